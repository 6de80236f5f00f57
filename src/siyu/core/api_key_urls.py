from django.urls import path

from siyu.core import api_key_views as views

app_name = "apikeys"
urlpatterns = [
    path("", views.key_list, name="list"),
    path("new/", views.key_create, name="create"),
    path("<int:pk>/revoke/", views.key_revoke, name="revoke"),
]
