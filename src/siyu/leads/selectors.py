"""Hot leads (热度线索): a staff member's customers ranked by recent, decaying engagement.

    score = Σ weight(event type) · 0.5 ^ (age in days / half-life), over the last N days

The whole sum is one grouped SQL query (the decay included), ordered and sliced in the
database, so a page costs the same for ten customers or ten thousand. See docs/leads.md.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    Max,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Power
from django.utils import timezone

from siyu.customers.models import Customer, Relationship
from siyu.events.models import Event, EventType

# How much one event of a type says about interest; a type not listed counts 1.
WEIGHTS: dict[str, float] = {
    "order_paid": 8.0,
    "order_placed": 6.0,
    "message_replied": 5.0,
    "material_viewed": 3.0,
    "link_clicked": 3.0,
    "coupon_used": 3.0,
    "live_viewed": 2.0,
    "joined_group": 2.0,
    "checked_in": 2.0,
}
DEFAULT_WEIGHT = 1.0
PAGE_SIZE = 50


class DaysBetween(Func):
    """(later - earlier) in fractional days, as a float, on both engines."""

    output_field = FloatField()
    arity = 2

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores SQLite datetimes as UTC ISO text, which julianday() reads.
        return self.as_sql(
            compiler,
            connection,
            template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM (%(expressions)s))::double precision / 86400.0)",
            arg_joiner=" - ",
            **extra,
        )


def weight_expression() -> Case:
    return Case(
        *(When(type=name, then=Value(w)) for name, w in WEIGHTS.items()),
        default=Value(DEFAULT_WEIGHT),
        output_field=FloatField(),
    )


def score_expression(*, now: datetime, half_life_days: float) -> Sum:
    age = DaysBetween(Value(now, output_field=DateTimeField()), F("occurred_at"))
    decay = Power(Value(0.5), age / Value(float(half_life_days)))
    return Sum(Cast(weight_expression() * decay, FloatField()), output_field=FloatField())


@dataclass
class Lead:
    customer: Customer
    score: float
    last_at: datetime
    events: int
    top_type: str
    top_label: str
    top_count: int


@dataclass
class LeadPage:
    leads: list[Lead]
    page: int
    has_next: bool
    offset: int = 0


def lead_events(*, staff_id: int, since: datetime, now: datetime):
    """Events in the window of the customers this staff member owns or is friends with."""
    # `customer_id IN (owned UNION friends)` rather than a join to customers with an OR: the
    # planner can then probe the (customer, type, occurred_at) index once per customer, an
    # index-only scan, instead of scanning every event in the window (benchmarks/leads.py).
    owned = Customer.objects.filter(owner_id=staff_id, merged_into__isnull=True).values("pk")
    friends = Relationship.objects.filter(
        staff_id=staff_id, status=Relationship.Status.ACTIVE
    ).values("customer_id")
    return Event.objects.filter(
        customer_id__in=owned.union(friends), occurred_at__gte=since, occurred_at__lte=now
    )


def hot_leads(
    *,
    staff_id: int,
    page: int = 1,
    size: int = PAGE_SIZE,
    now: datetime | None = None,
    window_days: int | None = None,
    half_life_days: float | None = None,
) -> LeadPage:
    """One page of the staff member's customers, warmest first.

    Four queries whatever the numbers: the scores (grouped, ordered and sliced in SQL), the
    page's customers, their scores by event type (for "what they did"), the type labels.
    """
    now = now or timezone.now()
    window_days = window_days or settings.SIYU_LEADS_WINDOW_DAYS
    half_life_days = half_life_days or settings.SIYU_LEADS_HALF_LIFE_DAYS
    since = now - timedelta(days=window_days)
    events = lead_events(staff_id=staff_id, since=since, now=now)
    score = score_expression(now=now, half_life_days=half_life_days)
    offset = (page - 1) * size
    rows = list(
        events.values("customer_id")
        .annotate(score=score, last_at=Max("occurred_at"), events=Count("id"))
        .order_by("-score", "-last_at", "customer_id")[offset : offset + size + 1]
    )
    has_next = len(rows) > size
    rows = rows[:size]
    if not rows:
        return LeadPage([], page, False, offset)
    ids = [r["customer_id"] for r in rows]
    customers = Customer.objects.in_bulk(ids)
    # Per customer, the event type that adds most to the score: what made them warm.
    top: dict[int, tuple[float, str, int]] = {}
    by_type = (
        events.filter(customer_id__in=ids)
        .values("customer_id", "type")
        .annotate(score=score, n=Count("id"))
        .order_by()
    )
    for row in by_type:
        best = top.get(row["customer_id"])
        if best is None or (row["score"], row["type"]) > best[:2]:
            top[row["customer_id"]] = (row["score"], row["type"], row["n"])
    labels = dict(
        EventType.objects.filter(name__in={t[1] for t in top.values()}).values_list("name", "label")
    )
    leads = []
    for row in rows:
        if row["customer_id"] not in customers or row["customer_id"] not in top:
            continue  # deleted between the queries
        _, top_type, top_count = top[row["customer_id"]]
        leads.append(
            Lead(
                customer=customers[row["customer_id"]],
                score=row["score"],
                last_at=row["last_at"],
                events=row["events"],
                top_type=top_type,
                top_label=labels.get(top_type) or top_type,
                top_count=top_count,
            )
        )
    return LeadPage(leads, page, has_next, offset)
