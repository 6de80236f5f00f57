"""Deleting customers waits for event batches that found them, so none leaves orphans behind.

The events table has no foreign key in the database (see Event.customer): ingestion locks each
customer it finds FOR KEY SHARE until its batch commits. The ORM's cascade deletes a customer's
events before the customer; without this lock taken first, a batch committing in between would
leave its events pointing at nobody. Taking FOR UPDATE on the customers before the cascade
waits for those batches, so the cascade's DELETE (a later statement) sees their events, and
makes later batches wait and then not find the customers at all.
"""

from django.db import connections
from django.db.models import QuerySet
from django.db.models.signals import pre_delete

from siyu.customers.models import Customer


def _lock_before_cascade(sender, instance, using, origin=None, **kwargs) -> None:
    if connections[using].vendor != "postgresql":
        return  # SQLite runs one writing transaction at a time
    if isinstance(origin, QuerySet) and origin.model is Customer:
        # One statement for a whole queryset delete, not one per customer.
        if getattr(origin, "_siyu_events_locked", False):
            return
        origin._siyu_events_locked = True
        pks = origin.values("pk")
    else:
        pks = [instance.pk]
    list(
        Customer._base_manager.using(using)
        .select_for_update()
        .filter(pk__in=pks)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def connect() -> None:
    pre_delete.connect(_lock_before_cascade, sender=Customer, dispatch_uid="events_lock_customer")
