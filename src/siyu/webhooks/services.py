"""Writes of outgoing webhooks: subscriptions, and events queued in the outbox.

Other apps call the `webhook_<event>` functions from inside the transaction that makes the
change, so the deliveries commit or roll back with it. Each call is cheap when nobody listens:
the active subscriptions are read once per transaction, and an event without subscribers
builds no payload and writes nothing.
"""

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction
from django.utils import timezone

from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.webhooks import events
from siyu.webhooks.addresses import check_url
from siyu.webhooks.models import WebhookDelivery, WebhookSubscription
from siyu.webhooks.signing import new_secret

DESCRIPTION_LENGTH = 200

# Subscriptions


def _clean_types(event_types: Iterable[str]) -> list[str]:
    types = sorted(set(event_types))
    if events.ALL in types:
        return [events.ALL]
    unknown = [t for t in types if t not in events.CATALOGUE]
    if unknown or not types:
        raise DomainError(
            "choose one or more of: " + ", ".join([events.ALL, *events.CATALOGUE]),
            field="event_types",
        )
    return types


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_LENGTH:
        raise DomainError(
            f"the description is longer than {DESCRIPTION_LENGTH} characters",
            field="description",
        )
    return description


@transaction.atomic
def webhook_subscription_create(
    *, actor, url: str, event_types: Iterable[str], description: str = "", ip: str | None = None
) -> WebhookSubscription:
    """A new active subscription with a generated secret (read it once from `.secret`).

    Raises DomainError for a refused URL (not http(s), private address, unresolvable host),
    no or unknown event types, or a too long description.
    """
    subscription = WebhookSubscription.objects.create(
        url=check_url(url),
        event_types=_clean_types(event_types),
        description=_clean_description(description),
        secret=new_secret(),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    _forget_subscriptions()
    audit_record(
        actor=actor,
        action=AuditLog.Action.CREATE,
        target=subscription,
        summary=f"webhook {subscription.url}",
        detail={"event_types": subscription.event_types},
        ip=ip,
    )
    return subscription


@transaction.atomic
def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    event_types: Iterable[str],
    description: str,
    actor=None,
    ip: str | None = None,
) -> WebhookSubscription:
    """Change what it receives. Raises DomainError like webhook_subscription_create."""
    before = subscription.event_types
    subscription.event_types = _clean_types(event_types)
    subscription.description = _clean_description(description)
    subscription.save(update_fields=["event_types", "description"])
    _forget_subscriptions()
    if before != subscription.event_types:
        audit_record(
            actor=actor,
            action=AuditLog.Action.UPDATE,
            target=subscription,
            summary=f"webhook {subscription.url}: event types",
            detail={"before": before, "after": subscription.event_types},
            ip=ip,
        )
    return subscription


@transaction.atomic
def webhook_subscription_set_active(
    *, subscription: WebhookSubscription, active: bool, reason: str = ""
) -> WebhookSubscription:
    """Pause or resume. Resuming starts a new failure streak; queued deliveries then go out."""
    subscription.active = active
    subscription.disabled_reason = "" if active else reason[:300]
    fields = ["active", "disabled_reason"]
    if active:
        subscription.failure_streak, subscription.failing_since = 0, None
        fields += ["failure_streak", "failing_since"]
    subscription.save(update_fields=fields)
    _forget_subscriptions()
    return subscription


@transaction.atomic
def webhook_subscription_rotate_secret(
    *, subscription: WebhookSubscription, actor, ip: str | None = None
) -> WebhookSubscription:
    """A new secret at once: deliveries sent from now on are signed with it."""
    subscription.secret = new_secret()
    subscription.secret_rotated_at = timezone.now()
    subscription.save(update_fields=["secret", "secret_rotated_at"])
    audit_record(
        actor=actor,
        action=AuditLog.Action.UPDATE,
        target=subscription,
        summary=f"webhook {subscription.url}: secret rotated",
        ip=ip,
    )
    return subscription


@transaction.atomic
def webhook_subscription_delete(
    *, subscription: WebhookSubscription, actor, ip: str | None = None
) -> None:
    """Delete it with its delivery log; what was not sent yet is not sent."""
    audit_record(
        actor=actor,
        action=AuditLog.Action.DELETE,
        target=subscription,
        summary=f"webhook {subscription.url}",
        detail={"event_types": subscription.event_types},
        ip=ip,
    )
    subscription.delete()
    _forget_subscriptions()


# The outbox

_muted: ContextVar[bool] = ContextVar("siyu_webhooks_muted", default=False)


@contextmanager
def webhooks_muted() -> Iterator[None]:
    """Queue no per-record events inside: a bulk import sends one import.completed instead."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


class _Outbox:
    """Registered with on_commit once per transaction: it holds the active subscriptions read
    in that transaction, and after the commit wakes the sender if anything was queued."""

    def __init__(self) -> None:
        self.subscriptions: list[tuple[int, list[str]]] | None = None
        self.queued = False

    def __call__(self) -> None:
        if self.queued:
            from siyu.webhooks.tasks import webhook_deliveries_send_task

            webhook_deliveries_send_task()


def _current_outbox() -> _Outbox | None:
    for _savepoints, callback, _robust in transaction.get_connection().run_on_commit:
        if isinstance(callback, _Outbox):
            return callback
    return None


def _outbox() -> _Outbox:
    outbox = _current_outbox()
    if outbox is None:
        outbox = _Outbox()
        # Robust: a queue that is down must not fail a committed change; the minutely run
        # sends what was queued anyway.
        transaction.on_commit(outbox, robust=True)
    return outbox


def _forget_subscriptions() -> None:
    # The transaction changed a subscription: its later events must read them again.
    outbox = _current_outbox()
    if outbox is not None:
        outbox.subscriptions = None


def webhook_events_enqueue(
    *,
    event_type: str,
    items: Callable[[], Iterable[dict]],
) -> list[WebhookDelivery]:
    """Queue one event per data item for every active subscription that receives the type,
    in one INSERT inside the caller's transaction.

    `items` is called only when someone listens, so its payloads cost nothing otherwise.
    """
    if _muted.get():
        return []
    with transaction.atomic(savepoint=False):
        outbox = _outbox()
        if outbox.subscriptions is None:
            outbox.subscriptions = list(
                WebhookSubscription.objects.filter(active=True).values_list("pk", "event_types")
            )
        targets = [
            pk for pk, types in outbox.subscriptions if events.ALL in types or event_type in types
        ]
        if not targets:
            return []
        now = timezone.now()
        rows = []
        for data in items():
            event_id = uuid.uuid4()
            envelope = {
                "id": str(event_id),
                "type": event_type,
                "created_at": now.isoformat(),
                "data": data,
            }
            rows.extend(
                WebhookDelivery(
                    subscription_id=pk,
                    event_type=event_type,
                    event_id=event_id,
                    payload=envelope,
                    next_attempt_at=now,
                    created_at=now,
                )
                for pk in targets
            )
        created = WebhookDelivery.objects.bulk_create(rows)
        outbox.queued = outbox.queued or bool(created)
        return created


# What other apps call, one line at the place of the change.


def webhook_customers_created(*, customers: Sequence) -> None:
    webhook_events_enqueue(
        event_type=events.CUSTOMER_CREATED,
        items=lambda: [events.customer_data(c) for c in customers],
    )


def webhook_customer_updated(*, customer, changed: Sequence[str]) -> None:
    """customer.updated when resolution filled empty attributes or attached new identifiers."""
    if changed:
        webhook_events_enqueue(
            event_type=events.CUSTOMER_UPDATED,
            items=lambda: [{**events.customer_data(customer), "changed": list(changed)}],
        )


def webhook_customers_merged(*, survivor_id: int, absorbed_ids: Sequence[int], reason: str) -> None:
    webhook_events_enqueue(
        event_type=events.CUSTOMER_MERGED,
        items=lambda: [
            events.merge_data(survivor_id=survivor_id, absorbed_ids=absorbed_ids, reason=reason)
        ],
    )


PAID_STATUSES = frozenset({"paid", "shipped", "completed"})


def order_was_paid(order) -> bool:
    return order is not None and (order.paid_at is not None or order.status in PAID_STATUSES)


def webhook_order_changed(*, order, was_paid: bool, refunded_before) -> None:
    """order.paid when the order is paid now and was not before (a new paid order included);
    order.refunded each time its refunded amount grows."""
    if order_was_paid(order) and not was_paid:
        webhook_events_enqueue(
            event_type=events.ORDER_PAID, items=lambda: [events.order_data(order)]
        )
    if order.refund_amount > (refunded_before or 0):
        webhook_events_enqueue(
            event_type=events.ORDER_REFUNDED, items=lambda: [events.order_data(order)]
        )


def webhook_tags_changed(
    *, added: bool, pairs: Sequence[tuple[int, int]], names: Mapping[int, str], source: str
) -> None:
    """tag.added or tag.removed for (customer id, tag id) pairs: one event per tag and
    TAG_EVENT_CUSTOMERS customers."""
    if pairs:
        webhook_events_enqueue(
            event_type=events.TAG_ADDED if added else events.TAG_REMOVED,
            items=lambda: list(events.tag_data(pairs, names, source)),
        )


def webhook_import_completed(*, job) -> None:
    webhook_events_enqueue(
        event_type=events.IMPORT_COMPLETED, items=lambda: [events.import_data(job)]
    )
