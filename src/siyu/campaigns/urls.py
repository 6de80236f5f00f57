from django.urls import path

from siyu.campaigns import views

app_name = "campaigns"
urlpatterns: list = [
    path("", views.campaign_list_view, name="list"),
    path("<int:pk>/", views.campaign_detail_view, name="detail"),
    path("<int:pk>/<slug:action>/", views.campaign_action_view, name="action"),
]
