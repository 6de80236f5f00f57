"""The event type registry for the console: types with their recent activity, and edits."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.utils import timezone

from siyu.core.audit import audit_record
from siyu.core.models import AuditLog
from siyu.events.models import Event, EventType

RECENT_DAYS = 30


@dataclass
class TypeRow:
    type: EventType
    recent_count: int
    last_seen: datetime | None


def event_type_rows(*, now: datetime | None = None) -> list[TypeRow]:
    """Every registered type, unlabelled ones first, with its events in the last 30 days.

    Two queries whatever the number of types: the counts are one grouped query bounded by
    occurred_at (read from the (type, occurred_at, customer) index), and each type's last
    event is a correlated subquery that reads one index entry from the end of its range.
    """
    since = (now or timezone.now()) - timedelta(days=RECENT_DAYS)
    counts = dict(
        Event.objects.filter(occurred_at__gte=since)
        .values("type")
        .annotate(n=Count("*"))
        .values_list("type", "n")
        .order_by()
    )
    last = Event.objects.filter(type=OuterRef("name")).order_by("-occurred_at")
    unlabelled_first = Case(
        When(label="", then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    types = EventType.objects.annotate(
        last_seen=Subquery(last.values("occurred_at")[:1]),
    ).order_by(unlabelled_first, "name")
    return [TypeRow(t, counts.get(t.name, 0), t.last_seen) for t in types]


def event_type_update(
    *, actor, event_type: EventType, label: str, description: str, properties: dict, ip=None
) -> EventType:
    event_type.label = label
    event_type.description = description
    event_type.properties = properties
    event_type.save(update_fields=["label", "description", "properties"])
    audit_record(
        actor=actor,
        action=AuditLog.Action.UPDATE,
        target=event_type,
        summary=f"event type {event_type.name}",
        detail={"label": label, "properties": sorted(properties)},
        ip=ip,
    )
    return event_type
