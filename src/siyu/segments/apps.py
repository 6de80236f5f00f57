from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from siyu.customers.merge import register_customer_owned
        from siyu.segments.models import CustomerClv, SnapshotMember, StageChange
        from siyu.segments.services import merge_customer_clv, merge_snapshot_members

        register_customer_owned(StageChange)
        register_customer_owned(SnapshotMember, on_conflict=merge_snapshot_members)
        # A merged customer's predicted value is recomputed from its orders by the next fit.
        register_customer_owned(CustomerClv, on_conflict=merge_customer_clv)
