from django.urls import path

from siyu.segments import views

app_name = "segments"
urlpatterns: list = [
    # Segment builder and saved segments (views.py)
    # Layers: RFM grid, lifecycle funnel, super users, lifetime value model (views.py)
    path("layers/rfm/", views.rfm_grid_view, name="rfm"),
    path("layers/lifecycle/", views.lifecycle_view, name="lifecycle"),
    path("layers/super-users/", views.super_users_view, name="super_users"),
    path("layers/recompute/<str:kind>/", views.layer_recompute, name="layer_recompute"),
]
