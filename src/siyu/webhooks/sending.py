"""Sending the outbox: claim due deliveries, POST them signed, record the answer, retry.

A worker claims a batch in one short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, so
workers never take the same row; SQLite's IMMEDIATE transactions take turns), then posts
outside any transaction. A delivery left "sending" by a killed worker is claimed again once
CLAIM_TIMEOUT has passed. Every failure schedules the next attempt after BACKOFF (with
jitter); after the last one the delivery is dead. A subscription that keeps failing is
disabled with the reason, so a dead endpoint does not hold the queue up for ever.
"""

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from siyu.core.errors import DomainError
from siyu.webhooks import events, signing
from siyu.webhooks.addresses import check_host
from siyu.webhooks.models import WebhookDelivery, WebhookSubscription

# Waits after the 1st … 5th failed attempt; the 6th failure is final.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
JITTER = 0.1  # ± this share of each wait, so failed deliveries do not retry in lockstep
BATCH = 20
# Longer than a batch can take (BATCH × the timeout), so a slow worker keeps its claim.
CLAIM_TIMEOUT = timedelta(minutes=10)
EXCERPT = 1000
# The delivery log keeps finished deliveries this long; waiting ones stay until they finish.
KEEP_DAYS = 30
Status = WebhookDelivery.Status


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int


def backoff(attempts: int) -> timedelta | None:
    """The wait after `attempts` failed attempts, or None when that was the last."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait = BACKOFF[max(attempts, 1) - 1]
    return wait * (1 + random.uniform(-JITTER, JITTER))


def _due(now) -> Q:
    waiting = Q(status__in=[Status.PENDING, Status.FAILED], next_attempt_at__lte=now)
    stuck = Q(status=Status.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT)
    return waiting | stuck


def webhook_deliveries_claim(*, limit: int = BATCH) -> list[int]:
    """Mark up to `limit` due deliveries of active subscriptions as sending; return their ids."""
    now = timezone.now()
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(_due(now), subscription__active=True)
        claimed = list(
            due.order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=claimed).update(
            status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    return claimed


def webhook_deliveries_send(*, budget_seconds: float = 50.0, limit: int = BATCH) -> int:
    """Claim and send batches until none is due or the time budget is spent; return how
    many were sent (successfully or not)."""
    started = time.monotonic()
    sent = 0
    with _client() as client:
        while time.monotonic() - started < budget_seconds:
            claimed = webhook_deliveries_claim(limit=limit)
            if not claimed:
                break
            deliveries = WebhookDelivery.objects.filter(pk__in=claimed).select_related(
                "subscription"
            )
            for delivery in deliveries.order_by("next_attempt_at", "pk"):
                webhook_delivery_attempt(delivery=delivery, client=client)
                sent += 1
    return sent


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Make a failed or dead delivery due now; the worker sends it with the next batch.

    A retried dead delivery gets one more attempt. Raises DomainError for any other status.
    """
    with transaction.atomic():
        # Conditional: a delivery a worker is sending right now is left alone.
        retried = WebhookDelivery.objects.filter(
            pk=delivery.pk, status__in=[Status.FAILED, Status.DEAD]
        ).update(status=Status.PENDING, next_attempt_at=timezone.now())
        if not retried:
            raise DomainError("only a failed or dead delivery can be retried")
        transaction.on_commit(_wake, robust=True)
    delivery.refresh_from_db()
    return delivery


def _wake() -> None:
    from siyu.webhooks.tasks import webhook_deliveries_send_task

    webhook_deliveries_send_task()


def webhook_subscription_ping(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """Send a `ping` event to this subscription at once, whatever its state, and return the
    delivery with the answer. A failed ping is not retried and does not count as a failure."""
    now = timezone.now()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event_type=events.PING,
        event_id=event_id,
        payload={
            "id": str(event_id),
            "type": events.PING,
            "created_at": now.isoformat(),
            "data": {"subscription_id": subscription.pk},
        },
        status=Status.SENDING,
        attempts=1,
        claimed_at=now,
        created_at=now,
    )
    with _client() as client:
        webhook_delivery_attempt(delivery=delivery, client=client)
    delivery.refresh_from_db()
    return delivery


def _client() -> httpx.Client:
    return httpx.Client(
        timeout=settings.SIYU_WEBHOOKS_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "Siyu-Webhooks/1", "Content-Type": "application/json"},
        trust_env=False,
    )


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


def _post(client: httpx.Client, delivery: WebhookDelivery) -> Outcome:
    subscription = delivery.subscription
    body = body_of(delivery)
    headers = {
        signing.SIGNATURE_HEADER: signing.sign(subscription.secret, body),
        signing.EVENT_HEADER: delivery.event_type,
        signing.DELIVERY_HEADER: str(delivery.pk),
    }
    started = time.monotonic()

    def outcome(ok: bool, code: int | None, error: str, excerpt: str = "") -> Outcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(ok, code, error[:500], excerpt[:EXCERPT], elapsed)

    try:
        parts = urlsplit(subscription.url)
        # Checked again at each send: the name may point somewhere else since it was saved.
        check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        with client.stream("POST", subscription.url, content=body, headers=headers) as response:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT:
                    break
            text = excerpt[:EXCERPT].decode("utf-8", errors="replace")
            code = response.status_code
            if 200 <= code < 300:
                return outcome(True, code, "", text)
            reason = "redirect not followed" if 300 <= code < 400 else f"HTTP {code}"
            return outcome(False, code, reason, text)
    except DomainError as exc:
        return outcome(False, None, exc.message)
    except httpx.TimeoutException:
        return outcome(False, None, f"timed out after {settings.SIYU_WEBHOOKS_TIMEOUT} s")
    except httpx.ConnectError as exc:
        return outcome(
            False, None, f"could not connect: {exc}" if str(exc) else "could not connect"
        )
    except httpx.HTTPError as exc:
        return outcome(False, None, f"{type(exc).__name__}: {exc}")


def webhook_delivery_attempt(*, delivery: WebhookDelivery, client: httpx.Client) -> Outcome:
    """Post a claimed delivery and record the outcome on it and on its subscription."""
    result = _post(client, delivery)
    now = timezone.now()
    fields = {
        "last_status_code": result.status_code,
        "last_error": result.error,
        "response_excerpt": result.excerpt,
        "duration_ms": result.duration_ms,
        "claimed_at": None,
    }
    with transaction.atomic():
        if result.ok:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.SUCCEEDED, delivered_at=now, **fields
            )
            WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(
                failure_streak=0, failing_since=None, last_success_at=now
            )
            return result
        ping = delivery.event_type == events.PING
        wait = None if ping else backoff(delivery.attempts)
        if wait is None:
            fields.update(status=Status.DEAD)
        else:
            fields.update(status=Status.FAILED, next_attempt_at=now + wait)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if not ping:
            _count_failure(delivery.subscription_id, now, result)
    return result


def _count_failure(subscription_id: int, now, result: Outcome) -> None:
    subscription = (
        WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    )
    if subscription is None:  # deleted while its delivery was on the way
        return
    subscription.failure_streak += 1
    subscription.failing_since = subscription.failing_since or now
    fields = ["failure_streak", "failing_since"]
    limit = settings.SIYU_WEBHOOKS_DISABLE_AFTER
    days = settings.SIYU_WEBHOOKS_DISABLE_AFTER_DAYS
    too_many = subscription.failure_streak >= limit
    too_long = now - subscription.failing_since >= timedelta(days=days)
    if subscription.active and (too_many or too_long):
        subscription.active = False
        subscription.disabled_reason = (
            f"disabled after {subscription.failure_streak} failed deliveries in a row since "
            f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC (last: {result.error})"
        )[:300]
        fields += ["active", "disabled_reason"]
    subscription.save(update_fields=fields)


def webhook_deliveries_purge(*, keep_days: int = KEEP_DAYS, batch: int = 5_000) -> int:
    """Delete succeeded and dead deliveries older than `keep_days`, a batch per statement so
    the table is never locked for long; return how many went."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    old = WebhookDelivery.objects.filter(
        status__in=[Status.SUCCEEDED, Status.DEAD], created_at__lt=cutoff
    )
    removed = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:batch]):
        removed += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
    return removed
