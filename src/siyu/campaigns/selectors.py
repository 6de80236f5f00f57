"""Reads for the campaign engine: addresses, cap counts, campaign lists and figures."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from siyu.campaigns.dnd import CONSENT_FIELD, CapCounter, cap_windows
from siyu.campaigns.experiments import SENT, replied_after_send, reply_window
from siyu.campaigns.guardrail import left_after_send
from siyu.campaigns.models import Campaign, ChannelName, Delivery, StaffTask
from siyu.campaigns.staff_tasks import StaffTaskFigures, staff_task_figures
from siyu.channels.base import adapter_for, registered, uncapped
from siyu.content.models import MaterialView
from siyu.customers.models import Customer, Identity
from siyu.customers.selectors import customers_visible_to
from siyu.org.models import Staff
from siyu.org.selectors import NOBODY, Viewer, viewer_for
from siyu.segments.dsl import segment_members
from siyu.segments.models import Segment

COUNTED = [Delivery.Status.SENT, Delivery.Status.ACCEPTED]


def channel_addresses(kind: str, customers: Sequence[Customer]) -> dict[int, str]:
    """Where each customer is reached on a channel of `kind`; customers without one are absent.

    One query at most: e-mail and WeCom ids come from identities (the oldest wins), phones
    and owners from the customer rows already loaded.
    """
    if kind == "phone":
        return {c.pk: c.phone for c in customers if c.phone}
    if kind == "owner":
        return {c.pk: str(c.owner_id) for c in customers if c.owner_id}
    identity_kind = {"email": Identity.Kind.EMAIL, "wecom": Identity.Kind.WECOM_EXTERNAL}.get(kind)
    if identity_kind is None:
        return {}
    found: dict[int, str] = {}
    rows = (
        Identity.objects.filter(kind=identity_kind, customer_id__in=[c.pk for c in customers])
        .order_by("-id")
        .values_list("customer_id", "value")
    )
    for customer_id, value in rows:
        found[customer_id] = value  # oldest last, so it wins
    return found


def cap_counter_for(customer_ids: Iterable[int], now: datetime) -> CapCounter:
    """Marketing messages already sent to these customers today and this week, in one query."""
    day_start, week_start = cap_windows(now)
    counter = CapCounter({}, {}, {}, {})
    rows = (
        Delivery.objects.filter(
            customer_id__in=list(customer_ids),
            status__in=COUNTED,
            sent_at__gte=week_start,
            campaign__marketing=True,
        )
        .exclude(channel__in=uncapped())
        .values("customer_id", "channel")
        .annotate(week=Count("id"), day=Count("id", filter=Q(sent_at__gte=day_start)))
        .order_by()
    )
    for row in rows:
        customer, key = row["customer_id"], (row["customer_id"], row["channel"])
        counter.day[customer] = counter.day.get(customer, 0) + row["day"]
        counter.week[customer] = counter.week.get(customer, 0) + row["week"]
        counter.channel_day[key] = row["day"]
        counter.channel_week[key] = row["week"]
    return counter


def campaigns_visible_to(viewer: Viewer) -> QuerySet[Campaign]:
    """Admins see every campaign, managers their store's owners', staff their own."""
    qs = Campaign.objects.select_related("owner", "segment")
    if viewer.is_admin:
        return qs
    if viewer.is_manager and viewer.store_id:
        return qs.filter(owner__store_id=viewer.store_id)
    if viewer.staff_id:
        return qs.filter(owner_id=viewer.staff_id)
    return qs.none()


def campaign_figures(campaign: Campaign) -> dict[str, object]:
    """Deliveries by status and suppression reason, conversions, revenue and ROI: two queries.

    ROI is (attributed revenue − cost) / cost, None without a cost."""
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .values("status", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["status"] == Delivery.Status.SUPPRESSED:
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["n"]
    totals = campaign.conversions.aggregate(n=Count("id"), revenue=Sum("amount"))
    revenue = totals["revenue"] or Decimal(0)
    roi = (revenue - campaign.cost) / campaign.cost if campaign.cost else None
    return {
        "by_status": by_status,
        "by_reason": by_reason,
        "total": sum(by_status.values()),
        "conversions": totals["n"],
        "revenue": revenue,
        "roi": roi,
    }


def campaign_steps(campaign: Campaign) -> list:
    """The steps with their variants (and scripts), in two queries."""
    return list(
        campaign.steps.select_related("webhook")
        .prefetch_related("variants__script")
        .order_by("order")
    )


def staff_tasks_open(staff_id: int | None, now: datetime) -> QuerySet:
    """A staff member's tasks to do: due by the end of today (organisation zone), oldest first,
    with the customer or, for a moments post, the step; overdue ones (due before today) are
    marked by the template."""
    if staff_id is None:
        return StaffTask.objects.none()
    day_start, _ = cap_windows(now)
    tomorrow = timezone.localtime(day_start) + timedelta(days=1)
    return (
        StaffTask.objects.filter(staff_id=staff_id, done_at__isnull=True, due_at__lt=tomorrow)
        .select_related("customer", "delivery__campaign", "step__campaign")
        .order_by("due_at", "id")
    )


def moments_audiences(tasks: Sequence[StaffTask]) -> dict[int, int]:
    """Moments task id → how many customers its post was sent for: one grouped query (the
    deliveries name the task in their external id)."""
    ids = {f"task-{task.pk}": task.pk for task in tasks if task.kind == StaffTask.Kind.MOMENTS}
    if not ids:
        return {}
    rows = (
        Delivery.objects.filter(
            staff_id__in={task.staff_id for task in tasks},
            step_id__in={task.step_id for task in tasks if task.step_id},
            channel=ChannelName.STAFF_MOMENTS,
            external_id__in=ids,
        )
        .values("external_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {ids[row["external_id"]]: row["n"] for row in rows}


# ---------------------------------------------------------------------------- builder preview


@dataclass(frozen=True)
class ChannelPreview:
    """What would happen to the audience on one channel if it were planned now."""

    channel: str
    opt_out: int  # the customer's consent flag for the channel is off
    no_consent: int  # flag unset while consent is opt-in
    no_address: int  # no e-mail, phone, owner or WeCom id for the channel
    capped: int  # already at a frequency cap today or this week (caps apply at send time)
    reachable: int

    @property
    def label(self) -> str:
        return str(dict(ChannelName.choices).get(self.channel, self.channel))


@dataclass(frozen=True)
class AudiencePreview:
    audience: int
    channels: list[ChannelPreview]
    marketing: bool


def _capped(channel: str, now: datetime) -> Q:
    """Customers a marketing message on `channel` would be held from now by a cap."""
    day_start, week_start = cap_windows(now)
    sent = Delivery.objects.filter(
        customer_id=OuterRef("pk"), status__in=COUNTED, campaign__marketing=True
    ).exclude(channel__in=uncapped())
    limits = [
        (sent.filter(sent_at__gte=day_start), settings.SIYU_CAMPAIGN_CAP_DAY),
        (sent.filter(sent_at__gte=week_start), settings.SIYU_CAMPAIGN_CAP_WEEK),
        (
            sent.filter(sent_at__gte=day_start, channel=channel),
            settings.SIYU_CAMPAIGN_CHANNEL_CAP_DAY,
        ),
        (
            sent.filter(sent_at__gte=week_start, channel=channel),
            settings.SIYU_CAMPAIGN_CHANNEL_CAP_WEEK,
        ),
    ]
    condition = Q()
    for rows, cap in limits:
        counted = rows.order_by().values("customer_id").annotate(n=Count("id")).values("n")
        condition |= Q(Exists(counted.filter(n__gte=cap)))
    return condition


def _unreachable(channel: str) -> list[tuple[str, Q]]:
    """(name, condition) in the order the planner checks them (planner._suppression)."""
    checks: list[tuple[str, Q]] = []
    consent = CONSENT_FIELD.get(channel)
    if consent:
        checks.append(("opt_out", Q(**{consent: False})))
        if settings.SIYU_CAMPAIGN_CONSENT == "opt_in":
            checks.append(("no_consent", Q(**{f"{consent}__isnull": True})))
    kind = adapter_for(channel).address_kind if channel in registered() else ""
    identity = {"email": Identity.Kind.EMAIL, "wecom": Identity.Kind.WECOM_EXTERNAL}.get(kind)
    if identity:
        has = Identity.objects.filter(customer_id=OuterRef("pk"), kind=identity)
        checks.append(("no_address", ~Q(Exists(has))))
    elif kind == "phone":
        checks.append(("no_address", Q(phone="")))
    elif kind == "owner":
        checks.append(("no_address", Q(owner_id__isnull=True)))
    return checks


def campaign_audience_preview(
    *,
    kind: str,
    segment: Segment | None,
    owner: Staff,
    channels: Sequence[str],
    marketing: bool = True,
    now: datetime | None = None,
) -> AudiencePreview | None:
    """The customers the campaign would reach now, and per channel how many consent, a missing
    address or a frequency cap would hold back. Nothing is planned or sent.

    The audience is the segment in the owner's scope, as the planner reads it (triggered
    campaigns without a segment: every customer in the owner's scope, who may trigger it).
    One COUNT per channel; None when there is no audience to count yet (no segment).
    """
    now = now or timezone.now()
    viewer = viewer_for(owner.user) if owner.user_id else NOBODY
    if segment is not None:
        members = segment_members(segment.definition, viewer, now)
    elif kind == Campaign.Kind.TRIGGERED:
        members = customers_visible_to(viewer)
    else:
        return None
    previews = []
    audience = None
    for channel in dict.fromkeys(channels):  # each channel once, in step order
        counts: dict[str, object] = {"audience": Count("pk")}
        earlier = Q()
        for name, condition in _unreachable(channel):
            counts[name] = Count("pk", filter=condition & ~earlier)
            earlier |= condition
        if marketing and channel not in uncapped():
            counts["capped"] = Count("pk", filter=_capped(channel, now) & ~earlier)
        row = members.order_by().aggregate(**counts)
        audience = row["audience"]
        held = sum(row.get(k, 0) for k in ("opt_out", "no_consent", "no_address", "capped"))
        previews.append(
            ChannelPreview(
                channel=channel,
                opt_out=row.get("opt_out", 0),
                no_consent=row.get("no_consent", 0),
                no_address=row.get("no_address", 0),
                capped=row.get("capped", 0),
                reachable=audience - held,
            )
        )
    if audience is None:
        audience = members.count()
    return AudiencePreview(audience=audience, channels=previews, marketing=marketing)


@dataclass
class Engagement:
    """What recipients did after a send, for the whole campaign or one staff member."""

    staff_id: int | None = None
    name: str = ""
    sent: int = 0
    replied: int = 0
    opened: int = 0
    left: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    tasks: StaffTaskFigures | None = None

    def add(self, other: "Engagement") -> None:
        for name in ("sent", "replied", "opened", "left", "conversions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.revenue += other.revenue


def _opened_after_send() -> Exists:
    """The customer opened a tracked material within the reply window after the send."""
    return Exists(
        MaterialView.objects.filter(
            customer_id=OuterRef("customer_id"),
            opened_at__gt=OuterRef("sent_at"),
            opened_at__lte=ExpressionWrapper(
                OuterRef("sent_at") + reply_window(), output_field=DateTimeField()
            ),
        )
    )


def campaign_engagement(
    campaign: Campaign, now: datetime | None = None
) -> tuple[Engagement, list[Engagement]]:
    """The campaign's totals and one row per sending staff member (the customer's owner when
    planned): sent, replied, opened a material, left (deleted, blocked or unsubscribed
    afterwards), conversions, revenue and their staff tasks. Four queries, whatever the
    number of deliveries; the per-delivery probes are index lookups by customer."""
    now = now or timezone.now()
    rows: dict[int | None, Engagement] = {}
    sent = (
        Delivery.objects.filter(campaign_id=campaign.pk, status__in=SENT)
        .values("staff_id")
        .annotate(
            sent=Count("id"),
            replied=Count("id", filter=Q(replied_after_send())),
            opened=Count("id", filter=Q(_opened_after_send())),
            left=Count("id", filter=left_after_send(now)),
        )
        .order_by()
    )
    for row in sent:
        staff_id = row.pop("staff_id")
        rows[staff_id] = Engagement(staff_id=staff_id, **row)
    conversions = (
        campaign.conversions.values(staff_id=F("delivery__staff_id"))
        .annotate(n=Count("id"), revenue=Sum("amount"))
        .order_by()
    )
    for row in conversions:
        found = rows.setdefault(row["staff_id"], Engagement(staff_id=row["staff_id"]))
        found.conversions, found.revenue = row["n"], row["revenue"] or Decimal(0)
    for tasks in staff_task_figures(campaign=campaign, now=now):
        rows.setdefault(tasks.staff_id, Engagement(staff_id=tasks.staff_id)).tasks = tasks
    names = dict(Staff.objects.filter(pk__in=[k for k in rows if k]).values_list("pk", "name"))
    total = Engagement()
    for row in rows.values():
        row.name = names.get(row.staff_id, "")
        total.add(row)
    by_staff = sorted(rows.values(), key=lambda r: (-r.conversions, -r.sent, r.name))
    return total, by_staff
