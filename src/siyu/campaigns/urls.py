from django.urls import path

from siyu.campaigns import views, views_ab

app_name = "campaigns"
urlpatterns: list = [
    path("", views.campaign_list_view, name="list"),
    path("new/", views.campaign_new_view, name="new"),
    path("calendar/", views.campaign_calendar_view, name="calendar"),
    path("tasks/", views.my_tasks_view, name="tasks"),
    path("tasks/<int:pk>/done/", views.task_done_view, name="task_done"),
    path("<int:pk>/", views.campaign_detail_view, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit_view, name="edit"),
    path(
        "<int:pk>/variants/<int:variant_id>/promote/",
        views_ab.variant_promote_view,
        name="variant_promote",
    ),
    path("<int:pk>/<slug:action>/", views.campaign_action_view, name="action"),
]
