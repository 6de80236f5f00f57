"""The customer timeline: what happened to one customer, newest first, across apps, in pages.

Each kind of record is one `TimelineKind`: a label and a fetch that reads at most `limit` of
its rows older than a cursor, newest first. The timeline asks every chosen kind and merges the
sorted lists in Python, so a page costs one query per kind (two for relationships: added and
removed are two moments of one row) plus at most two to describe events, however long the
history is.

Order and paging: items are ordered by (time desc, kind in KINDS order, id desc); the cursor is
that triple for the last item shown, and each kind reads only what sorts after it. Ties on the
time are therefore neither repeated nor skipped across pages.

A new kind is one more fetch in KINDS and one more branch in customers/_timeline_items.html.
"""

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.campaigns.models import Conversion, Delivery, StaffTask
from siyu.campaigns.selectors import campaigns_visible_to
from siyu.commerce.models import Order
from siyu.core.masking import mask_email, mask_phone, mask_text
from siyu.customers.models import Customer, Relationship
from siyu.events.models import Event, EventType
from siyu.org.models import Staff
from siyu.org.selectors import Viewer
from siyu.segments.models import StageChange
from siyu.segments.rfm import PAID_STATUSES
from siyu.tags.models import TagChange

DEFAULT_LIMIT = 30
MATERIAL_VIEWED = "material_viewed"
# Orders are on the timeline from commerce.Order, which has their amounts, status and refunds;
# an integration that also sends its orders as behaviour events would show each twice.
ORDER_EVENT_TYPES = frozenset({"order", "order_paid", "order_placed", "order_refunded", "refund"})
SHOWN_PROPERTIES = 4
SHOWN_VALUE_LENGTH = 80
SHOWN_TEXT_LENGTH = 120
CENTS = Decimal("0.01")


class CursorError(ValueError):
    pass


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_MICROS = tuple(
    (datetime(year, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1) for year in (1000, 3000)
)


@dataclass(frozen=True)
class Cursor:
    """The place of the last item shown: older items sort after it. Text form `micros.kind.id`
    (microseconds since the epoch, UTC), safe in a URL."""

    at: datetime
    kind: str
    id: int

    def __str__(self) -> str:
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}.{self.kind}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """Raises CursorError naming what is wrong with the text."""
        parts = text.split(".") if len(text) <= 60 else []
        if len(parts) != 3:
            raise CursorError(_("expected time.kind.id"))
        micros, kind, id_ = parts
        if not re.fullmatch(r"-?[0-9]{1,18}", micros) or not re.fullmatch(r"[0-9]{1,18}", id_):
            raise CursorError(_("the time and the id must be whole numbers"))
        if kind not in KINDS:
            raise CursorError(_("unknown kind of record"))
        # Well inside what datetime, both databases and the day headers' zone conversion take.
        if not CURSOR_MICROS[0] <= int(micros) < CURSOR_MICROS[1]:
            raise CursorError(_("the time is out of range"))
        return cls(at=EPOCH + timedelta(microseconds=int(micros)), kind=kind, id=int(id_))


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    at: datetime
    id: int  # unique within the kind; with `at` and `kind` it places the item in the order
    row: Any  # the record; customers/_timeline_items.html renders it by kind
    action: str = ""  # relationship: "added" or "removed"
    detail: Any = None  # event: an EventDetail; delivery: a DeliveryDetail

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.kind, self.id)


Fetch = Callable[[Customer, Cursor | None, int], Iterable[TimelineItem]]


@dataclass(frozen=True)
class TimelineKind:
    code: str
    label: str
    fetch: Fetch


@dataclass(frozen=True)
class TimelineDay:
    day: date
    label: str  # "today", "yesterday" or "" for a date
    continued: bool  # the previous page ended on this day: no header again
    items: list[TimelineItem]


@dataclass(frozen=True)
class Timeline:
    items: list[TimelineItem]
    has_more: bool  # older records exist beyond this page
    days: list[TimelineDay] = field(default_factory=list)

    @property
    def next_cursor(self) -> Cursor | None:
        return self.items[-1].cursor if self.has_more else None


@dataclass(frozen=True)
class EventDetail:
    label: str  # the registry's label, or the raw type when nobody has named it
    properties: list[tuple[str, str]]  # (description or name, value), masked for the viewer
    material_title: str = ""  # material_viewed only
    shared_by: str = ""


@dataclass(frozen=True)
class DeliveryDetail:
    campaign_url: str  # "" when the viewer may not open the campaign
    text: str  # the text sent, shortened, identifiers masked for the viewer
    error: str  # failed: the error's first line, masked the same way
    task: StaffTask | None  # staff tasks and moments posts: the task the person works through
    conversions: int  # goals credited to this delivery
    converted_amount: Decimal  # their paid amount (0 for event goals)


def _older(
    qs: QuerySet, *, kind: str, before: Cursor | None, limit: int, at: Any, id_: Any = None
) -> QuerySet:
    """`qs` (rows of `kind`) limited to those after `before` in timeline order, newest first.

    `at` and `id_` are the expressions giving each row's time and id (the pk by default).
    """
    qs = qs.alias(tl_at=at, tl_id=id_ if id_ is not None else F("pk"))
    if before is not None:
        rank, theirs = RANK[kind], RANK[before.kind]
        if rank < theirs:  # this kind comes first at an equal time: only older times remain
            qs = qs.filter(tl_at__lt=before.at)
        elif rank > theirs:  # comes later: the rest of the equal time remains
            qs = qs.filter(tl_at__lte=before.at)
        else:
            qs = qs.filter(Q(tl_at__lt=before.at) | Q(tl_at=before.at, tl_id__lt=before.id))
    return qs.order_by(F("tl_at").desc(), F("tl_id").desc())[:limit]


def _events(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    rows = _older(
        Event.objects.filter(customer=customer).exclude(type__in=ORDER_EVENT_TYPES),
        kind="event",
        before=before,
        limit=limit,
        at=F("occurred_at"),
    )
    return (TimelineItem("event", row.occurred_at, row.pk, row) for row in rows)


def _orders(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    # Paid orders and refunded ones, at their paid time (placed time when the platform gave
    # none), as RFM counts them. The order carries its refunded amount but no refund time, so
    # the refund is a line of its order rather than an item of its own.
    rows = _older(
        Order.objects.filter(customer=customer)
        .filter(Q(status__in=[*PAID_STATUSES, Order.Status.REFUNDED]) | Q(refund_amount__gt=0))
        .filter(Q(paid_at__isnull=False) | Q(placed_at__isnull=False))
        .select_related("channel"),
        kind="order",
        before=before,
        limit=limit,
        at=Coalesce("paid_at", "placed_at"),  # as order_customer_paid_time_idx
    )
    return (TimelineItem("order", row.paid_at or row.placed_at, row.pk, row) for row in rows)


# Deliveries that are history: sent, handed to the platform (accepted), failed, or held back.
# Pending and sending ones have not happened yet; cancelled ones never went out.
SHOWN_DELIVERIES = [
    Delivery.Status.SENT,
    Delivery.Status.ACCEPTED,
    Delivery.Status.FAILED,
    Delivery.Status.SUPPRESSED,
]
DELIVERY_AT = Coalesce("sent_at", "claimed_at", "planned_for")


def _deliveries(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    # The time it happened: sent (or accepted); a failure or a hold-back by the sender at its
    # last claim; a hold-back at planning (never claimed) at the time it was planned for, and
    # only once that time has come — a step planned for next week is not history yet.
    # A merge leaves an absorbed customer's deliveries on its tombstone (the outbox keeps one
    # row per step, customer and occurrence); tombstones point straight at the survivor.
    people = Customer.objects.filter(Q(pk=customer.pk) | Q(merged_into_id=customer.pk))
    rows = _older(
        Delivery.objects.filter(customer_id__in=people.values("pk"), status__in=SHOWN_DELIVERIES)
        .exclude(
            status=Delivery.Status.SUPPRESSED,
            claimed_at__isnull=True,
            planned_for__gt=timezone.now(),
        )
        .select_related("campaign", "step", "variant", "task__staff"),
        kind="delivery",
        before=before,
        limit=limit,
        at=DELIVERY_AT,
    )
    return (TimelineItem("delivery", _delivery_at(row), row.pk, row) for row in rows)


def _delivery_at(row: Delivery) -> datetime:
    return row.sent_at or row.claimed_at or row.planned_for


def _tags(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    # `tag` is null once the tag is deleted; the change keeps its name.
    rows = _older(
        TagChange.objects.filter(customer=customer).select_related("tag", "by__staff"),
        kind="tag",
        before=before,
        limit=limit,
        at=F("at"),
    )
    return (TimelineItem("tag", row.at, row.pk, row) for row in rows)


def _stages(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    rows = _older(
        StageChange.objects.filter(customer=customer),
        kind="stage",
        before=before,
        limit=limit,
        at=F("at"),
    )
    return (TimelineItem("stage", row.at, row.pk, row) for row in rows)


def _relationships(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    # Two moments of one row: the adding (id 2·pk) and the removal (id 2·pk + 1), each read
    # newest first by its own query.
    rows = Relationship.objects.filter(customer=customer).select_related("staff", "channel")
    added = _older(
        rows, kind="relationship", before=before, limit=limit, at=F("added_at"), id_=F("pk") * 2
    )
    removed = _older(
        rows.filter(removed_at__isnull=False),
        kind="relationship",
        before=before,
        limit=limit,
        at=F("removed_at"),
        id_=F("pk") * 2 + 1,
    )
    return [
        *(TimelineItem("relationship", r.added_at, r.pk * 2, r, "added") for r in added),
        *(TimelineItem("relationship", r.removed_at, r.pk * 2 + 1, r, "removed") for r in removed),
    ]


def _merges(customer: Customer, before: Cursor | None, limit: int) -> Iterable[TimelineItem]:
    rows = _older(
        customer.merges.all(), kind="merge", before=before, limit=limit, at=F("merged_at")
    )
    return (TimelineItem("merge", row.merged_at, row.pk, row) for row in rows)


# The order of the kinds is also the order of records that share a timestamp.
KINDS: dict[str, TimelineKind] = {
    kind.code: kind
    for kind in (
        TimelineKind("event", _("Behaviour"), _events),
        TimelineKind("order", _("Orders"), _orders),
        TimelineKind("delivery", _("Campaign messages"), _deliveries),
        TimelineKind("tag", _("Tags"), _tags),
        TimelineKind("stage", _("Lifecycle stages"), _stages),
        TimelineKind("relationship", _("Staff relationships"), _relationships),
        TimelineKind("merge", _("Merges"), _merges),
    )
}
RANK = {code: rank for rank, code in enumerate(KINDS)}


def customer_timeline(
    customer: Customer,
    *,
    kinds: Sequence[str] | None = None,
    before: Cursor | None = None,
    limit: int = DEFAULT_LIMIT,
    mask_pii: bool = True,
    viewer: Viewer | None = None,
    today: date | None = None,
) -> Timeline:
    """One page of the customer's records of the chosen kinds (all when None), newest first,
    older than `before` (from the newest when None). One query per kind, two more when the page
    holds events, up to two more when it holds deliveries (which campaigns the viewer, when
    given, may open; the conversions credited to them). The caller has already checked the
    viewer may see the customer; identifiers in event properties and sent texts are masked
    unless `mask_pii` is False."""
    chosen = [KINDS[code] for code in (kinds or KINDS)]
    items: list[TimelineItem] = []
    for kind in chosen:
        # One more than shown tells whether older records exist.
        items.extend(kind.fetch(customer, before, limit + 1))
    items.sort(key=lambda i: (i.at, -RANK[i.kind], i.id), reverse=True)
    page = _describe_events(items[:limit], mask_pii=mask_pii)
    page = _describe_deliveries(page, mask_pii=mask_pii, viewer=viewer)
    return Timeline(
        items=page,
        has_more=len(items) > limit,
        days=_days(page, before=before, today=today or timezone.localdate()),
    )


def _days(items: list[TimelineItem], *, before: Cursor | None, today: date) -> list[TimelineDay]:
    """The page's items by day in the organisation's zone."""
    names = {today: _("Today"), today - timedelta(days=1): _("Yesterday")}
    previous = timezone.localdate(before.at) if before else None
    days: list[TimelineDay] = []
    for item in items:
        day = timezone.localdate(item.at)
        if not days or days[-1].day != day:
            days.append(TimelineDay(day, names.get(day, ""), day == previous, []))
        days[-1].items.append(item)
    return days


def _describe_events(items: list[TimelineItem], *, mask_pii: bool) -> list[TimelineItem]:
    """Events with their registry label and described properties: one query for the page's
    types, one for the staff who shared the materials opened."""
    events = [i.row for i in items if i.kind == "event"]
    if not events:
        return items
    types = {t.name: t for t in EventType.objects.filter(name__in={e.type for e in events})}
    staff_ids = {
        e.properties.get("staff_id") for e in events if e.type == MATERIAL_VIEWED and e.properties
    }
    staff_ids = {int(s) for s in staff_ids if isinstance(s, int | str) and str(s).isdigit()}
    names = (
        dict(Staff.objects.filter(pk__in=staff_ids).values_list("pk", "name")) if staff_ids else {}
    )
    described = []
    for item in items:
        if item.kind == "event":
            detail = _event_detail(item.row, types.get(item.row.type), names, mask_pii=mask_pii)
            item = TimelineItem(item.kind, item.at, item.id, item.row, detail=detail)
        described.append(item)
    return described


def _event_detail(
    event: Event, event_type: EventType | None, staff_names: dict, *, mask_pii: bool
) -> EventDetail:
    props = event.properties if isinstance(event.properties, dict) else {}
    descriptions = event_type.properties if event_type and event_type.properties else {}
    label = (event_type.label if event_type else "") or event.type
    if event.type == MATERIAL_VIEWED:
        staff_id = props.get("staff_id")
        staff = staff_names.get(int(staff_id)) if str(staff_id).isdigit() else None
        title = props.get("material_title") or f"#{props.get('material_id', '?')}"
        return EventDetail(label, [], material_title=_short(title), shared_by=staff or "")
    # The properties the registry describes, under their description; when it describes none
    # of them, the first few by name, so nothing the sender meant is invisible. By name: a
    # PostgreSQL jsonb keeps no order of its keys.
    named = [(descriptions[k], k) for k in sorted(descriptions) if k in props]
    if not named:
        named = [(k, k) for k in sorted(props)]
    shown = [
        (str(title), _shown_value(key, props[key], mask_pii=mask_pii))
        for title, key in named[:SHOWN_PROPERTIES]
    ]
    return EventDetail(label, shown)


def _moments_posts(deliveries: list[Delivery]) -> dict[str, StaffTask]:
    """The moments posts the page's deliveries name (`task-<id>`), by that name: one query."""
    names = {
        d.external_id
        for d in deliveries
        if d.channel == "staff_moments" and d.external_id.startswith("task-")
    }
    if not names:
        return {}
    tasks = StaffTask.objects.select_related("staff").filter(
        pk__in=[int(name.removeprefix("task-")) for name in names]
    )
    return {f"task-{task.pk}": task for task in tasks}


def _describe_deliveries(
    items: list[TimelineItem], *, mask_pii: bool, viewer: Viewer | None
) -> list[TimelineItem]:
    """Deliveries with their campaign's link (one query: which of the page's campaigns the
    viewer may open), the goals credited to them (one query, when a sent one's campaign has a
    goal), the text sent and the error, masked for the viewer."""
    deliveries = [i.row for i in items if i.kind == "delivery"]
    if not deliveries:
        return items
    openable: set[int] = set()
    if viewer is not None:
        visible = campaigns_visible_to(viewer).filter(pk__in={d.campaign_id for d in deliveries})
        openable = set(visible.values_list("pk", flat=True))
    # Attribution credits sent deliveries of campaigns with a goal. Read for the page's rows
    # only: in the kind's query the database would count them for every message of the
    # customer before sorting.
    credited: dict[int, tuple[int, Decimal]] = {}
    sent = Delivery.Status.SENT
    if goal_ids := [d.pk for d in deliveries if d.campaign.goal and d.status == sent]:
        rows = (
            Conversion.objects.filter(delivery_id__in=goal_ids)
            .values("delivery_id")
            .annotate(n=Count("pk"), total=Sum("amount"))
            .order_by()
        )
        credited = {r["delivery_id"]: (r["n"], r["total"] or Decimal(0)) for r in rows}
    posts = _moments_posts(deliveries)
    described = []
    for item in items:
        if item.kind == "delivery":
            row = item.row
            error = row.error.strip().splitlines()[0] if row.error.strip() else ""
            detail = DeliveryDetail(
                campaign_url=(
                    reverse("campaigns:detail", args=[row.campaign_id])
                    if row.campaign_id in openable
                    else ""
                ),
                # On one line: an excerpt, not the message's layout.
                text=_short(
                    " ".join(_masked_in_text(row.rendered_text, mask_pii).split()),
                    SHOWN_TEXT_LENGTH,
                ),
                error=_short(_masked_in_text(error, mask_pii)),
                task=(
                    getattr(row, "task", None)
                    if row.channel == "staff_task"
                    else posts.get(row.external_id)
                ),
                conversions=credited.get(row.pk, (0, 0))[0],
                # SQLite sums decimals to their shortest form (219.5).
                converted_amount=Decimal(credited.get(row.pk, (0, 0))[1]).quantize(CENTS),
            )
            item = TimelineItem(item.kind, item.at, item.id, row, detail=detail)
        described.append(item)
    return described


# Mainland mobiles with or without +86, and any number written in international form.
PHONE_LIKE = re.compile(r"(?:\+?86)?1[3-9]\d{9}|\+\d{8,15}")
EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The same inside running text (a message, an error), where digits and letters of other words
# surround them: whole numbers only, and addresses of the characters an address may hold.
PHONE_IN_TEXT = re.compile(r"(?<![\d+])(?:(?:\+?86)?1[3-9]\d{9}|\+\d{8,15})(?!\d)")
EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IDENTIFIER_KEYS = re.compile(r"phone|mobile|tel|email|mail|openid|unionid|userid|id_?card", re.I)


def _shown_value(key: str, value: object, *, mask_pii: bool) -> str:
    """The value as text, shortened; identifiers masked as on the rest of the profile."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if mask_pii:
        if EMAIL_LIKE.fullmatch(text):
            return mask_email(text)
        if PHONE_LIKE.fullmatch(compact := re.sub(r"[\s-]", "", text)):
            return mask_phone(compact)
        if IDENTIFIER_KEYS.search(key) and text:
            return mask_text(text)
    return _short(text)


def _masked_in_text(text: str, mask_pii: bool) -> str:
    """Phone numbers and e-mail addresses inside a text masked (before it is shortened, so a
    cut never leaves a number whole enough to escape)."""
    if not mask_pii or not text:
        return text
    text = EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group()), text)
    return PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group().removeprefix("86")), text)


def _short(text: object, length: int = SHOWN_VALUE_LENGTH) -> str:
    text = str(text)
    return text if len(text) <= length else text[: length - 1] + "…"
