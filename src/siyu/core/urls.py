from django.urls import path

from siyu.core import views

app_name = "core"
urlpatterns = [
    path("", views.audit_log, name="audit"),
]
