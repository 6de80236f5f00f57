"""Reads of outgoing webhooks for the console."""

from django.db.models import Count, Q, QuerySet

from siyu.webhooks.models import WebhookDelivery, WebhookSubscription

Status = WebhookDelivery.Status


def webhook_subscription_list() -> QuerySet[WebhookSubscription]:
    """Every subscription with its creator and its waiting and dead deliveries, one query."""
    return WebhookSubscription.objects.select_related("created_by").annotate(
        waiting=Count(
            "deliveries",
            filter=Q(deliveries__status__in=[Status.PENDING, Status.FAILED, Status.SENDING]),
        ),
        dead=Count("deliveries", filter=Q(deliveries__status=Status.DEAD)),
    )


def webhook_subscription_get(pk: int) -> WebhookSubscription:
    return WebhookSubscription.objects.select_related("created_by").get(pk=pk)


def webhook_delivery_log(
    *, subscription: WebhookSubscription, status: str = ""
) -> QuerySet[WebhookDelivery]:
    """The subscription's deliveries, without their payloads (the detail page shows one)."""
    qs = WebhookDelivery.objects.filter(subscription=subscription).defer("payload")
    if status:
        qs = qs.filter(status=status)
    return qs


def webhook_delivery_get(pk: int) -> WebhookDelivery:
    return WebhookDelivery.objects.select_related("subscription").get(pk=pk)
