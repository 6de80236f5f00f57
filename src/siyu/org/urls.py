from django.urls import path

from siyu.org import views

app_name = "org"
urlpatterns = [
    path("", views.org_index, name="index"),
]
