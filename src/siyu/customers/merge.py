"""The registry of customer-owned tables that a merge must move.

Every app whose rows belong to a customer registers its model in `AppConfig.ready()`; a merge
moves the rows of all registered models in one transaction, so later apps are moved too.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class CustomerOwned:
    model: type[models.Model]
    field: str
    # Called before the move to settle rows that would break a unique constraint.
    on_conflict: Callable[[int, Sequence[int]], None] | None


_registry: dict[str, CustomerOwned] = {}


def register_customer_owned(
    model: type[models.Model],
    *,
    field: str = "customer",
    on_conflict: Callable[[int, Sequence[int]], None] | None = None,
) -> None:
    _registry[model._meta.label_lower] = CustomerOwned(model, field, on_conflict)


def customer_owned_models() -> list[CustomerOwned]:
    return list(_registry.values())


def merge_relationships(survivor_id: int, absorbed_ids: Sequence[int]) -> None:
    """Keep one relationship per staff member: the earliest, active if any was active."""
    from siyu.customers.models import Relationship

    rows = list(
        Relationship.objects.filter(customer_id__in=[survivor_id, *absorbed_ids]).order_by(
            "staff_id", "added_at", "id"
        )
    )
    by_staff: dict[int, list[Relationship]] = {}
    for row in rows:
        by_staff.setdefault(row.staff_id, []).append(row)
    drop: list[int] = []
    for group in by_staff.values():
        if len(group) < 2:
            continue
        keep, *others = group
        active = [r for r in group if r.status == Relationship.Status.ACTIVE]
        if active and keep.status != Relationship.Status.ACTIVE:
            keep.status = Relationship.Status.ACTIVE
            keep.removed_at = None
            keep.removed_by = ""
        for other in others:
            keep.remark = keep.remark or other.remark
            keep.state = keep.state or other.state
            keep.channel_id = keep.channel_id or other.channel_id
        keep.save(
            update_fields=["status", "removed_at", "removed_by", "remark", "state", "channel"]
        )
        drop.extend(r.pk for r in others)
    if drop:
        Relationship.objects.filter(pk__in=drop).delete()
