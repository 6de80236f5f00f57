from django.urls import path

from siyu.channels.wecom import views

app_name = "wecom"
urlpatterns = [
    path("", views.connection_settings, name="settings"),
    path("test/", views.connection_check, name="test"),
]
