from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from siyu.customers.merge import register_customer_owned
        from siyu.segments.models import StageChange

        register_customer_owned(StageChange)
