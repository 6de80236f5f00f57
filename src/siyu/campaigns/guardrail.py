"""Guardrail: a campaign that makes customers leave pauses itself and tells its owner.

Counted over the campaign's deliveries sent in the last 24 hours: recipients who, after their
message, deleted or blocked a staff member (Relationship removed by the customer) or sent an
`unsubscribed` event. When at least SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS were reached and
the share of such recipients exceeds SIYU_CAMPAIGN_GUARDRAIL_BASIS_POINTS / 10,000 (0.5 %),
the campaign is paused with the reason and its owner notified.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.campaigns.models import Campaign, Delivery
from siyu.customers.models import Relationship
from siyu.events.models import Event
from siyu.notifications.services import notify

WINDOW = timedelta(hours=24)
UNSUBSCRIBED = "unsubscribed"


def left_after_send(now: datetime) -> Q:
    """A delivery whose customer deleted or blocked staff, or unsubscribed, after it was sent."""
    removed = Relationship.objects.filter(
        customer_id=OuterRef("customer_id"),
        removed_by=Relationship.RemovedBy.CUSTOMER,
        removed_at__gte=OuterRef("sent_at"),
        removed_at__lte=now,
    )
    unsubscribed = Event.objects.filter(
        customer_id=OuterRef("customer_id"),
        type=UNSUBSCRIBED,
        occurred_at__gte=OuterRef("sent_at"),
        occurred_at__lte=now,
    )
    return Q(Exists(removed)) | Q(Exists(unsubscribed))


@transaction.atomic
def campaigns_guardrail_check(*, now: datetime | None = None) -> list[int]:
    """Pause the running marketing campaigns over the threshold; returns their ids.

    One aggregate query per running campaign (campaigns are few; customers are not looped).
    """
    now = now or timezone.now()
    paused = []
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING, marketing=True)
    for campaign in running.select_for_update(of=("self",)):
        figures = Delivery.objects.filter(
            campaign=campaign,
            status=Delivery.Status.SENT,
            sent_at__gte=now - WINDOW,
        ).aggregate(
            recipients=Count("customer_id", distinct=True),
            lost=Count("id", filter=left_after_send(now)),
        )
        recipients, lost = figures["recipients"], figures["lost"]
        if recipients < settings.SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS:
            continue
        if lost * 10_000 <= recipients * settings.SIYU_CAMPAIGN_GUARDRAIL_BASIS_POINTS:
            continue
        reason = _("%(lost)d of %(recipients)d recipients left or unsubscribed within 24 hours") % {
            "lost": lost,
            "recipients": recipients,
        }
        campaign.status, campaign.paused_reason = Campaign.Status.PAUSED, reason
        campaign.save(update_fields=["status", "paused_reason", "updated_at"])
        notify(
            staff_ids=[campaign.owner_id],
            kind="campaign_guardrail",
            key=f"campaign-guardrail-{campaign.pk}",
            title=_("Campaign %(name)s paused itself") % {"name": campaign.name},
            body=reason,
            url=reverse("campaigns:detail", args=[campaign.pk]),
        )
        paused.append(campaign.pk)
    return paused
