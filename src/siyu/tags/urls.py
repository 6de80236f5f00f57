from django.urls import path

from siyu.tags import views

app_name = "tags"
urlpatterns = [
    path("", views.tag_index, name="index"),
    path("groups/new/", views.group_create, name="group_create"),
    path("groups/<int:pk>/edit/", views.group_edit, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
    path("groups/<int:group_pk>/tags/new/", views.tag_new, name="tag_create"),
    path("<int:pk>/edit/", views.tag_edit, name="tag_edit"),
    path("<int:pk>/delete/", views.tag_remove, name="tag_delete"),
    path("<int:pk>/refresh/", views.tag_refresh, name="tag_refresh"),
    path("customers/<int:pk>/add/", views.customer_tag_add, name="customer_add"),
    path(
        "customers/<int:pk>/remove/<int:tag_pk>/",
        views.customer_tag_remove,
        name="customer_remove",
    ),
    path("bulk/", views.bulk_tag, name="bulk"),
]
