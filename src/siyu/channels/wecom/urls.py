from django.urls import path

from siyu.channels.wecom import views

app_name = "wecom"
urlpatterns = [
    path("", views.connection_settings, name="settings"),
    path("test/", views.connection_check, name="test"),
    path("sync/", views.sync_start, name="sync"),
    path("sync/resume/", views.sync_resume, name="sync_resume"),
    path("sync/status/", views.sync_status, name="sync_status"),
]
