from django.urls import path

from siyu.segments import views

app_name = "segments"
urlpatterns: list = [
    # Segment builder and saved segments (views.py)
    path("", views.segment_list_view, name="list"),
    path("new/", views.segment_new, name="new"),
    path("preview/", views.segment_preview, name="preview"),
    path("<int:pk>/", views.segment_detail, name="detail"),
    path("<int:pk>/edit/", views.segment_edit, name="edit"),
    path("<int:pk>/duplicate/", views.segment_duplicate_view, name="duplicate"),
    path("<int:pk>/delete/", views.segment_delete_view, name="delete"),
    path("<int:pk>/snapshots/new/", views.snapshot_create_view, name="snapshot_create"),
    path("<int:pk>/export/<str:fmt>/", views.segment_export_view, name="export"),
    # Layers: RFM grid, lifecycle funnel, super users, lifetime value model (views.py)
    path("layers/rfm/", views.rfm_grid_view, name="rfm"),
    path("layers/lifecycle/", views.lifecycle_view, name="lifecycle"),
    path("layers/super-users/", views.super_users_view, name="super_users"),
    path("layers/clv/", views.clv_view, name="clv"),
    path("layers/recompute/<str:kind>/", views.layer_recompute, name="layer_recompute"),
]
