"""Attribution: which campaign gets the credit for a goal reached (docs/campaigns.md).

Rule — last touch within the window: a conversion (a paid order of at least the minimum
amount, or an event of the goal type) is credited to the latest delivery *sent* to that
customer before it, among campaigns whose goal it matches and whose window (goal_days after
the send) covers it. Each order or event is credited at most once, to one campaign.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from siyu.campaigns.models import Campaign, Conversion, Delivery
from siyu.commerce.models import Order
from siyu.events.models import Event

SENT = [Delivery.Status.SENT]


def _touch(campaign: Campaign, moment: str) -> Subquery:
    """The latest sent delivery of `campaign` to the outer row's customer within the window."""
    return Subquery(
        Delivery.objects.filter(
            campaign=campaign,
            customer_id=OuterRef("customer_id"),
            status__in=SENT,
            sent_at__lte=OuterRef(moment),
            sent_at__gt=OuterRef(moment) - timedelta(days=campaign.goal_days),
        )
        .order_by("-sent_at", "-pk")
        .values("pk")[:1]
    )


def _touch_time() -> Subquery:
    return Subquery(Delivery.objects.filter(pk=OuterRef("touch")).values("sent_at")[:1])


@transaction.atomic
def conversions_attribute(*, now: datetime | None = None) -> int:
    """Credit the orders and events since the oldest open window; returns conversions added.

    One query per campaign with a goal (not per customer or order), then one bulk insert.
    Re-running adds nothing: a conversion's source (order or event) is unique.
    """
    now = now or timezone.now()
    campaigns = Campaign.objects.exclude(goal="").exclude(started_at__isnull=True)
    best: dict[
        str, tuple
    ] = {}  # source → (sent_at, delivery id, campaign id, customer, at, amount)
    for campaign in campaigns:
        since = max(campaign.started_at, now - timedelta(days=campaign.goal_days + 1))
        if campaign.goal == Campaign.Goal.PAID_ORDER:
            rows = Order.objects.filter(
                customer__isnull=False, paid_at__isnull=False, paid_at__gte=since
            )
            if campaign.goal_min_amount is not None:
                rows = rows.filter(amount__gte=campaign.goal_min_amount)
            moment, prefix, amount = "paid_at", "order", "amount"
        elif campaign.goal == Campaign.Goal.EVENT and campaign.goal_event_type:
            rows = Event.objects.filter(type=campaign.goal_event_type, occurred_at__gte=since)
            moment, prefix, amount = "occurred_at", "event", None
        else:
            continue
        found = (
            rows.annotate(touch=_touch(campaign, moment))
            .filter(~Q(touch=None))
            .annotate(touch_at=_touch_time())
            .values_list("pk", "touch", "touch_at", "customer_id", moment, amount or "pk")
        )
        for pk, touch, touch_at, customer_id, at, value in found:
            source = f"{prefix}:{pk}"
            candidate = (touch_at, touch, campaign.pk, customer_id, at, value if amount else 0)
            if source not in best or candidate[:2] > best[source][:2]:
                best[source] = candidate
    before = Conversion.objects.count()
    Conversion.objects.bulk_create(
        [
            Conversion(
                source=source,
                delivery_id=touch,
                campaign_id=campaign_id,
                customer_id=customer_id,
                occurred_at=at,
                amount=value,
            )
            for source, (_, touch, campaign_id, customer_id, at, value) in best.items()
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return Conversion.objects.count() - before
