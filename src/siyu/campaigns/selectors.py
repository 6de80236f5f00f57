"""Reads for the campaign engine: addresses, cap counts, campaign lists and figures."""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from siyu.campaigns.dnd import CapCounter, cap_windows
from siyu.campaigns.models import Campaign, Delivery, StaffTask
from siyu.customers.models import Customer, Identity
from siyu.org.selectors import Viewer

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
    with the customer; overdue ones (due before today) are marked by the template."""
    if staff_id is None:
        return StaffTask.objects.none()
    day_start, _ = cap_windows(now)
    tomorrow = timezone.localtime(day_start) + timedelta(days=1)
    return (
        StaffTask.objects.filter(staff_id=staff_id, done_at__isnull=True, due_at__lt=tomorrow)
        .select_related("customer", "delivery__campaign")
        .order_by("due_at", "id")
    )
