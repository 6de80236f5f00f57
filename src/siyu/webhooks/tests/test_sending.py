"""The sender against a real HTTP receiver: signed requests, retries with backoff on errors,
refused connections and timeouts, dead after the last attempt, failing subscriptions disabled,
deliveries left "sending" by a dead worker taken again, private addresses refused."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.core.errors import DomainError
from siyu.customers.services import customer_resolve
from siyu.webhooks import sending
from siyu.webhooks.models import WebhookDelivery, WebhookSubscription
from siyu.webhooks.sending import (
    BACKOFF,
    JITTER,
    MAX_ATTEMPTS,
    webhook_deliveries_claim,
    webhook_deliveries_send,
    webhook_delivery_retry,
    webhook_subscription_ping,
)
from siyu.webhooks.services import webhook_subscription_create

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def subscribe(org, url, *types):
    return webhook_subscription_create(actor=org.admin.user, url=url, event_types=types or ["*"])


def new_customer(n=0):
    return customer_resolve(identifiers=[("phone", f"1391234567{n}")]).customer


def make_due(delivery_ids=None):
    """Move every waiting delivery's next attempt to now, as if the wait had passed."""
    qs = WebhookDelivery.objects.filter(status__in=[Status.PENDING, Status.FAILED])
    if delivery_ids:
        qs = qs.filter(pk__in=delivery_ids)
    qs.update(next_attempt_at=timezone.now())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_delivery_is_signed_and_names_its_event_and_id(org, receiver):
    subscription = subscribe(org, receiver.url)
    customer = new_customer()
    assert webhook_deliveries_send() == 1
    (request,) = receiver.requests
    (body,) = receiver.verified(subscription.secret)  # raises if the signature is wrong
    delivery = WebhookDelivery.objects.get()
    assert request.headers["X-Siyu-Event"] == "customer.created"
    assert request.headers["X-Siyu-Delivery"] == str(delivery.pk)
    assert request.headers["Content-Type"] == "application/json"
    assert body["id"] == str(delivery.event_id)
    assert body["data"]["customer"]["id"] == customer.pk
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.response_excerpt == '{"ok": true}'
    assert delivery.delivered_at is not None and delivery.duration_ms is not None
    assert webhook_deliveries_send() == 0  # nothing is sent twice


def test_an_error_answer_is_retried_after_growing_waits_then_dead(org, receiver):
    subscribe(org, receiver.url)
    receiver.answer(*[500] * MAX_ATTEMPTS)
    new_customer()
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        before = timezone.now()
        assert webhook_deliveries_send() == 1
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == attempt
        assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
        assert delivery.response_excerpt == "upstream broke"
        if attempt < MAX_ATTEMPTS:
            assert delivery.status == Status.FAILED
            waits.append(delivery.next_attempt_at - before)
            assert webhook_deliveries_send() == 0  # not due yet
            make_due()
    assert delivery.status == Status.DEAD
    for wait, planned in zip(waits, BACKOFF, strict=True):
        assert planned * (1 - JITTER) - timedelta(seconds=1) <= wait
        assert wait <= planned * (1 + JITTER) + timedelta(seconds=1)
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_a_refused_connection_is_a_failure_with_the_reason(org):
    subscribe(org, f"http://127.0.0.1:{closed_port()}/hook")
    new_customer()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED and delivery.last_status_code is None
    assert delivery.last_error.startswith("could not connect")


def test_a_slow_receiver_times_out_and_is_retried(org, receiver, settings):
    settings.SIYU_WEBHOOKS_TIMEOUT = 0.3
    subscribe(org, receiver.url)
    receiver.answer((200, 1.5))
    new_customer()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED and delivery.last_error.startswith("timed out")
    make_due()
    webhook_deliveries_send()  # the receiver answers at once this time
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == 2


def test_a_redirect_is_not_followed(org, receiver):
    subscribe(org, receiver.url)
    receiver.answer(302)
    new_customer()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == (Status.FAILED, 302)
    assert delivery.last_error == "redirect not followed"
    assert len(receiver.requests) == 1


def test_a_subscription_failing_too_often_is_disabled_with_the_reason(org, receiver, settings):
    settings.SIYU_WEBHOOKS_DISABLE_AFTER = 3
    subscription = subscribe(org, receiver.url)
    receiver.answer(500, 500, 500)
    for n in range(4):
        new_customer(n)
    webhook_deliveries_send(limit=1)  # batches of one: the streak counts up between them
    subscription.refresh_from_db()
    assert not subscription.active and subscription.failure_streak == 3
    assert subscription.disabled_reason.startswith("disabled after 3 failed deliveries")
    assert "HTTP 500" in subscription.disabled_reason
    assert len(receiver.requests) == 3
    # Its fourth delivery waits; nothing is sent while the subscription is inactive.
    assert WebhookDelivery.objects.filter(status=Status.PENDING).count() == 1
    assert webhook_deliveries_send() == 0


def test_a_success_ends_the_failure_streak(org, receiver):
    subscription = subscribe(org, receiver.url)
    receiver.answer(500)
    new_customer(0)
    new_customer(1)
    webhook_deliveries_send()
    subscription.refresh_from_db()
    assert subscription.failure_streak == 0 and subscription.failing_since is None
    assert subscription.last_success_at is not None


def test_a_subscription_failing_for_days_is_disabled(org, receiver, settings):
    settings.SIYU_WEBHOOKS_DISABLE_AFTER_DAYS = 3
    subscription = subscribe(org, receiver.url)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        failure_streak=7, failing_since=timezone.now() - timedelta(days=3, minutes=1)
    )
    receiver.answer(503)
    new_customer()
    webhook_deliveries_send()
    subscription.refresh_from_db()
    assert not subscription.active and "8 failed deliveries" in subscription.disabled_reason


def test_a_delivery_left_sending_by_a_dead_worker_is_taken_again(org, receiver):
    subscribe(org, receiver.url)
    new_customer()
    (claimed,) = webhook_deliveries_claim()  # the worker took it, then was killed
    assert webhook_deliveries_claim() == []  # another worker leaves it alone meanwhile
    WebhookDelivery.objects.filter(pk=claimed).update(
        claimed_at=timezone.now() - sending.CLAIM_TIMEOUT - timedelta(seconds=1)
    )
    assert webhook_deliveries_send() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == 2
    assert len(receiver.requests) == 1


def test_retry_now_makes_a_dead_delivery_due_for_one_more_attempt(org, receiver):
    subscribe(org, receiver.url)
    new_customer()
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(DomainError):
        webhook_delivery_retry(delivery=delivery)  # pending: nothing to retry
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.DEAD, attempts=MAX_ATTEMPTS, next_attempt_at=timezone.now() + timedelta(1)
    )
    delivery = webhook_delivery_retry(delivery=delivery)
    assert delivery.status == Status.PENDING and delivery.next_attempt_at <= timezone.now()
    assert webhook_deliveries_send() == 1
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == MAX_ATTEMPTS + 1


def test_a_ping_is_sent_at_once_even_when_paused_and_a_failed_one_is_not_retried(org, receiver):
    subscription = subscribe(org, receiver.url)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(active=False)
    ok = webhook_subscription_ping(subscription=subscription)
    assert ok.status == Status.SUCCEEDED and ok.last_status_code == 200
    (body,) = receiver.verified(subscription.secret)
    assert body["type"] == "ping" and body["data"] == {"subscription_id": subscription.pk}
    receiver.answer(500)
    failed = webhook_subscription_ping(subscription=subscription)
    assert failed.status == Status.DEAD and failed.last_error == "HTTP 500"
    subscription.refresh_from_db()
    assert subscription.failure_streak == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(org, settings, url):
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(DomainError, match="public addresses only") as error:
        subscribe(org, url)
    assert error.value.field == "url"
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https://user:pw@example.com/", "no user name or password"),
        ("http://example.com:port/", "port is not a number"),
        ("https://no-such-host.invalid/", "cannot be resolved"),
        ("https://example.com/" + "x" * 500, "at most 500"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(org, settings, url, reason):
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(DomainError, match=reason):
        subscribe(org, url)


def test_a_host_that_turned_private_is_refused_at_sending(org, receiver, settings):
    subscribe(org, receiver.url)  # allowed when it was saved
    new_customer()
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = False
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED and "public addresses only" in delivery.last_error
    assert receiver.requests == []


def test_unknown_event_types_are_refused(org, receiver):
    with pytest.raises(DomainError, match="choose one or more"):
        subscribe(org, receiver.url, "customer.deleted")
    with pytest.raises(DomainError, match="choose one or more"):
        webhook_subscription_create(actor=org.admin.user, url=receiver.url, event_types=[])


def test_a_committed_change_wakes_the_sender_once(
    org, receiver, django_capture_on_commit_callbacks
):
    subscription = subscribe(org, receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for n in range(3):
            new_customer(n)
    assert len(callbacks) == 1  # one wake-up for the transaction, not one per change
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert len(receiver.verified(subscription.secret)) == 3


def test_finished_deliveries_are_purged_after_the_keeping_time(org, receiver):
    subscription = subscribe(org, receiver.url)
    old = timezone.now() - timedelta(days=sending.KEEP_DAYS, minutes=1)
    for status, created_at in [
        (Status.SUCCEEDED, old),
        (Status.DEAD, old),
        (Status.FAILED, old),  # still to be retried: kept
        (Status.SUCCEEDED, timezone.now()),
    ]:
        WebhookDelivery.objects.create(
            subscription=subscription,
            event_type="ping",
            payload={},
            status=status,
            created_at=created_at,
        )
    assert sending.webhook_deliveries_purge(batch=1) == 2
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        Status.FAILED,
        Status.SUCCEEDED,
    ]


def test_a_subscription_deleted_while_sending_is_no_error(org, receiver):
    subscription = subscribe(org, receiver.url)
    receiver.answer(500)
    new_customer()
    (claimed,) = webhook_deliveries_claim()
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=claimed)
    WebhookSubscription.objects.filter(pk=subscription.pk).delete()
    with sending._client() as client:
        result = sending.webhook_delivery_attempt(delivery=delivery, client=client)
    assert not result.ok and result.status_code == 500
