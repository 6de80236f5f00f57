from django.urls import path

from siyu.leads import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_list, name="list"),
]
