"""The customer timeline: what happened to one customer, newest first, across apps.

Each kind of record is one `TimelineKind`: a label and a fetch that reads at most `limit`
rows of that kind, newest first, in one query. The timeline asks every chosen kind and merges
the sorted lists in Python, so a page costs one query per kind however long the history is.
A later kind (events, deliveries) is one more entry in KINDS and one more branch in
customers/_timeline.html.
"""

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Order
from siyu.customers.models import Customer
from siyu.segments.models import StageChange
from siyu.segments.rfm import PAID_STATUSES
from siyu.tags.models import TagChange

DEFAULT_LIMIT = 30


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    at: datetime
    row: Any  # the record; customers/_timeline.html renders it by kind


@dataclass(frozen=True)
class TimelineKind:
    code: str
    label: str
    fetch: Callable[[Customer, int], Iterable[TimelineItem]]


@dataclass(frozen=True)
class Timeline:
    items: list[TimelineItem]
    has_more: bool  # older records exist beyond `limit`


def _stages(customer: Customer, limit: int) -> Iterable[TimelineItem]:
    rows = StageChange.objects.filter(customer=customer).order_by("-at", "-pk")[:limit]
    return (TimelineItem("stage", row.at, row) for row in rows)


def _tags(customer: Customer, limit: int) -> Iterable[TimelineItem]:
    # `tag` is null once the tag is deleted; the change keeps its name.
    rows = (
        TagChange.objects.filter(customer=customer)
        .select_related("tag", "by__staff")
        .order_by("-at", "-pk")[:limit]
    )
    return (TimelineItem("tag", row.at, row) for row in rows)


def _orders(customer: Customer, limit: int) -> Iterable[TimelineItem]:
    # Paid orders and refunded ones, at their paid time (placed time when the platform gave
    # none), as RFM counts them; the order carries its refunded amount, not a refund time.
    rows = (
        Order.objects.filter(customer=customer)
        .filter(Q(status__in=[*PAID_STATUSES, Order.Status.REFUNDED]) | Q(refund_amount__gt=0))
        .alias(paid_time=Coalesce("paid_at", "placed_at"))
        .filter(paid_time__isnull=False)
        .select_related("channel")
        .order_by(F("paid_time").desc(), "-pk")[:limit]
    )
    return (TimelineItem("order", row.paid_at or row.placed_at, row) for row in rows)


def _merges(customer: Customer, limit: int) -> Iterable[TimelineItem]:
    rows = customer.merges.order_by("-merged_at", "-pk")[:limit]
    return (TimelineItem("merge", row.merged_at, row) for row in rows)


KINDS: dict[str, TimelineKind] = {
    kind.code: kind
    for kind in (
        TimelineKind("stage", _("Lifecycle stages"), _stages),
        TimelineKind("tag", _("Tags"), _tags),
        TimelineKind("order", _("Orders"), _orders),
        TimelineKind("merge", _("Merges"), _merges),
    )
}


def customer_timeline(
    customer: Customer, *, kinds: Sequence[str] | None = None, limit: int = DEFAULT_LIMIT
) -> Timeline:
    """The customer's latest `limit` records of the chosen kinds (all when None), newest
    first; one query per kind. The caller has already checked the viewer may see them."""
    chosen = [KINDS[code] for code in (kinds or KINDS)]
    # One more than shown tells whether older records exist.
    streams = [kind.fetch(customer, limit + 1) for kind in chosen]
    merged = list(heapq.merge(*streams, key=lambda item: item.at, reverse=True))
    return Timeline(items=merged[:limit], has_more=len(merged) > limit)
