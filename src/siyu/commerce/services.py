"""Writes of orders one at a time (the REST API); the import loads them in bulk instead."""

from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from siyu.commerce.models import Order, OrderItem
from siyu.core.errors import DomainError
from siyu.customers.identifiers import Identifier
from siyu.customers.models import Channel
from siyu.customers.services import customer_resolve
from siyu.webhooks.services import order_was_paid, webhook_order_changed


@dataclass
class OrderUpserted:
    order: Order
    created: bool


def order_upsert(
    *,
    channel_code: str,
    external_id: str,
    identifiers: Sequence[Identifier],
    values: dict,
    items: Sequence[dict] | None,
) -> OrderUpserted:
    """Create or update the order (channel, external_id) for the customer the identifiers name.

    `values` are the order's fields (status, amount, refund_amount, placed_at, paid_at); a
    repeated call updates them, so refunds arrive as updates. Given `items` replace the lines;
    None keeps them. Raises DomainError for an unknown channel or unresolvable identifiers.
    """
    channel = Channel.objects.filter(code=channel_code).first()
    if channel is None:
        raise DomainError(f"no source channel has the code {channel_code!r}", field="channel")
    seen_at: datetime | None = values.get("placed_at") or values.get("paid_at")
    with transaction.atomic():
        customer = customer_resolve(
            identifiers=identifiers, channel=channel, seen_at=seen_at, reason="order"
        ).customer
        order, before = _order_upsert_row(channel, external_id, {"customer": customer, **values})
        if items is not None:
            order.items.all().delete()
            OrderItem.objects.bulk_create(OrderItem(order=order, **item) for item in items)
        webhook_order_changed(
            order=order,
            was_paid=order_was_paid(before),
            refunded_before=before.refund_amount if before else 0,
        )
    return OrderUpserted(order, before is None)


def _order_upsert_row(
    channel: Channel, external_id: str, values: dict
) -> tuple[Order, Order | None]:
    """The order written, and a copy as it was before (None when this call created it)."""
    order = Order.objects.select_for_update().filter(channel=channel, external_id=external_id)
    before = order.first()
    if before is None:
        try:
            with transaction.atomic():
                return Order.objects.create(
                    channel=channel, external_id=external_id, **values
                ), None
        except IntegrityError:
            # A concurrent upsert of the same order committed first: update that one.
            before = order.get()
    updated = copy(before)
    for key, value in values.items():
        setattr(updated, key, value)
    updated.save()
    return updated, before


def order_status(status: str | None, amount, refund_amount, paid_at) -> str:
    """The given status, or one read from the amounts: refunds decide, then payment."""
    if status:
        return status
    if refund_amount > 0:
        return Order.Status.REFUNDED if refund_amount >= amount else Order.Status.PARTIALLY_REFUNDED
    return Order.Status.PAID if paid_at else Order.Status.PENDING
