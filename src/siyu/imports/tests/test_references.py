"""The loader's references stay whole: on PostgreSQL a chunk's bulk writes may skip the per-row
foreign-key triggers, and then check the referenced rows themselves, all at once."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from siyu.commerce.models import Order
from siyu.customers.models import Customer, Identity
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports import presets
from siyu.imports.loader import load_orders, resolve_rows
from siyu.imports.rows import parse_order

TAOBAO = ["订单编号", "买家会员名", "买家实际支付金额", "订单状态", "订单创建时间"]
SEEN = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


def order_rows(*lines):
    mapping = presets.build_mapping(TAOBAO, kind="order")
    return [parse_order(n, list(v), mapping) for n, v in enumerate(lines, start=2)]


def test_orders_of_a_customer_removed_while_the_chunk_loads_are_refused(tmall):
    known = customer_resolve(identifiers=[("tmall_buyer", "tb_known")], channel=tmall).customer
    rows = order_rows(
        ["T1", "tb_known", "10.00", "交易成功", "2026-10-01 10:00:00"],
        ["T2", "tb_new", "20.00", "交易成功", "2026-10-02 10:00:00"],
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        row_customer, counts = resolve_rows(rows, channel=tmall, seen_at=SEEN)
        assert known.pk in row_customer
        # Someone removes the matched customer between matching and writing the orders.
        Customer.objects.filter(pk=known.pk).delete()
        load_orders(rows, row_customer, channel=tmall, counts=counts)
        connection.check_constraints()  # where the triggers ran: their deferred checks

    assert not Order.objects.filter(external_id__in=["T1", "T2"]).exists()


def test_after_a_chunk_the_foreign_keys_are_checked_again(tmall):
    rows = order_rows(["T3", "tb_other", "30.00", "交易成功", "2026-10-03 10:00:00"])
    row_customer, counts = resolve_rows(rows, channel=tmall, seen_at=SEEN)
    load_orders(rows, row_customer, channel=tmall, counts=counts)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"

    with pytest.raises(IntegrityError), transaction.atomic():
        Identity.objects.create(customer_id=row_customer[0] + 10_000, kind="email", value="a@b.cn")
        connection.check_constraints()
