"""WeCom's callback URL: public, no login, authenticated by the message signature."""

from django.urls import path

from siyu.channels.wecom import views

urlpatterns = [
    path("callback/", views.callback, name="wecom_callback"),
]
