"""Workers claiming at the same time on PostgreSQL never take the same delivery."""

import threading

import pytest
from django.db import connection, connections

from siyu.webhooks.models import WebhookDelivery
from siyu.webhooks.sending import webhook_deliveries_claim
from siyu.webhooks.services import webhook_subscription_create

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_split_the_due_deliveries_between_workers(org):
    subscription = webhook_subscription_create(
        actor=org.admin.user, url="http://127.0.0.1:9/hook", event_types=["*"]
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(subscription=subscription, event_type="ping", payload={}) for _ in range(60)
    )
    barrier = threading.Barrier(4)
    claims: list[list[int]] = []

    def worker():
        try:
            barrier.wait()
            for _ in range(3):
                claims.append(webhook_deliveries_claim(limit=10))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    claimed = [pk for claim in claims for pk in claim]
    assert len(claimed) == len(set(claimed)) == 60
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("sending", 1)}
