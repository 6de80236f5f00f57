from django.urls import path

from siyu.customers import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/timeline/", views.customer_timeline_view, name="timeline"),
    path(
        "<int:pk>/identities/<int:identity_id>/reveal/",
        views.identity_reveal_view,
        name="identity_reveal",
    ),
]
