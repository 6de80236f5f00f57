from django.urls import path  # noqa: F401 (filled in by the pages)

from siyu.segments import views  # noqa: F401

app_name = "segments"
urlpatterns: list = [
    # Segment builder and saved segments (views.py)
    # Layers: RFM grid, lifecycle funnel, super users, lifetime value model (views.py)
]
