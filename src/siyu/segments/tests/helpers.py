from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

from siyu.commerce.models import Order
from siyu.customers.tests.factories import ChannelFactory

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
_refs = count(1)


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def order(customer, *, days: float = 1, amount="100", status=Order.Status.PAID, refund="0"):
    """An order of `customer` paid (and placed) `days` before AS_OF."""
    return Order.objects.create(
        channel=ChannelFactory(code="tmall"),
        external_id=f"T{next(_refs)}",
        customer=customer,
        status=status,
        amount=Decimal(amount),
        refund_amount=Decimal(refund),
        placed_at=days_ago(days),
        paid_at=days_ago(days),
    )
