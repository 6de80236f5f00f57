from datetime import UTC, datetime

from siyu.commerce.models import Order
from siyu.customers.models import MergeRecord
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory


def test_a_merge_moves_the_absorbed_customers_orders_to_the_survivor(db):
    tmall = ChannelFactory(code="tmall")
    member = customer_resolve(
        identifiers=[("phone", "13800000001")], seen_at=datetime(2025, 1, 1, tzinfo=UTC)
    ).customer
    buyer = customer_resolve(identifiers=[("tmall_buyer", "tb_1")]).customer
    Order.objects.create(channel=tmall, external_id="T1", customer=buyer, amount=99)

    result = customer_resolve(identifiers=[("phone", "13800000001"), ("tmall_buyer", "tb_1")])

    assert result.customer == member
    assert Order.objects.get(external_id="T1").customer == member
    assert MergeRecord.objects.get(absorbed=buyer).moved["commerce.order"] == 1
