from django.urls import path

from siyu.channels.wecom import views

app_name = "wecom"
urlpatterns = [
    path("", views.connection_settings, name="settings"),
    path("test/", views.connection_check, name="test"),
    path("sync/", views.sync_start, name="sync"),
    path("sync/resume/", views.sync_resume, name="sync_resume"),
    path("sync/status/", views.sync_status, name="sync_status"),
    path("codes/", views.code_list, name="codes"),
    path("codes/new/", views.code_create, name="code_create"),
    path("codes/<int:pk>/", views.code_detail, name="code"),
    path("codes/<int:pk>/poster/", views.code_poster, name="code_poster"),
    path("codes/<int:pk>/delete/", views.code_delete, name="code_delete"),
    path("transfers/", views.transfers, name="transfers"),
    path("tags/mirror/", views.tag_group_mirror_view, name="tag_mirror"),
    path("transfers/check/", views.transfers_check, name="transfers_check"),
]
