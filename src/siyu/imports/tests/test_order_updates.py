"""A later order file updates the stored orders with what it says and keeps what it does not:
refund-only exports, masked buyers and files without item columns."""

import csv
from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderItem
from siyu.customers.models import Identity
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports.services import import_job_create, import_job_run
from siyu.imports.tests.test_jobs import TAOBAO, TAOBAO_ROWS

REFUNDS = ["订单编号", "退款金额", "售后状态"]  # a Taobao refund (售后) export

DOUYIN = ["主订单编号", "子订单编号", "选购商品", "商品数量", "订单应付金额", "收件人",
          "收件人手机号", "订单提交时间", "支付完成时间", "订单状态", "抖音号"]  # fmt: skip
# One order of two lines, one row each.
DOUYIN_ROWS = [
    ["D1", "D1-1", "面霜", "1", "60.00", "王芳", "13900000002",
     "2026-04-01 20:00:00", "2026-04-01 20:01:00", "已发货", "dy_wang"],
    ["D1", "D1-2", "面膜", "2", "40.00", "王芳", "13900000002",
     "2026-04-01 20:00:00", "2026-04-01 20:01:00", "已发货", "dy_wang"],
]  # fmt: skip


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


@pytest.fixture
def douyin(db):
    return ChannelFactory(code="douyin", name="抖音")


def run(tmp_path, header, rows, channel, **kwargs):
    path = tmp_path / f"orders-{len(list(tmp_path.iterdir()))}.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    job = import_job_create(path=path, kind="order", channel=channel, **kwargs)
    return import_job_run(job=job)


def stored(external_id):
    """What a user sees of an order: its values and its lines."""
    order = Order.objects.get(external_id=external_id)
    titles = sorted(order.items.values_list("title", flat=True))
    return (
        order.customer_id, order.status, order.amount, order.refund_amount, order.placed_at,
        order.paid_at, order.receiver_name, order.phone_display, titles, order.updated_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("refund", "status"), [("500.00", "partially_refunded"), ("1,299.00", "refunded")]
)
def test_a_refund_only_file_sets_the_refund_and_keeps_the_rest_of_the_order(
    tmall, tmp_path, refund, status
):
    # given orders from a full export
    run(tmp_path, TAOBAO, TAOBAO_ROWS, tmall)
    zhang = Identity.objects.get(kind="tmall_buyer", value="tb_zhang").customer
    before = Order.objects.get(external_id="T1")

    # when the refund export names only the order, its refund and the after-sale state
    job = run(tmp_path, REFUNDS, [["T1", refund, "退款成功"]], tmall, preset="taobao_orders")

    # then the refund is set, and the status follows it against the order's stored amount
    t1 = Order.objects.get(external_id="T1")
    assert (job.orders_created, job.orders_updated) == (0, 1)
    assert (t1.refund_amount, t1.status) == (Decimal(refund.replace(",", "")), status)
    assert (t1.amount, t1.placed_at, t1.paid_at) == (Decimal("1299.00"), before.placed_at,
                                                     before.paid_at)  # fmt: skip
    assert (t1.customer, t1.receiver_name, t1.phone_display) == (
        zhang,
        "张伟",
        before.phone_display,
    )
    assert list(t1.items.values_list("title", flat=True)) == ["面霜"]


def test_a_re_export_with_the_buyer_masked_keeps_each_order_with_its_customer(tmall, tmp_path):
    run(tmp_path, TAOBAO, TAOBAO_ROWS, tmall)
    customers = dict(Order.objects.values_list("external_id", "customer_id"))
    masked = [[row[0], "t**a", *row[2:5], "", *row[6:]] for row in TAOBAO_ROWS]
    masked[1][3] = "卖家已发货,等待买家确认"  # T2 has shipped since

    job = run(tmp_path, TAOBAO, masked, tmall)

    assert (job.orders_created, job.orders_updated) == (0, 1)
    assert dict(Order.objects.values_list("external_id", "customer_id")) == customers
    assert None not in customers.values()
    assert Order.objects.get(external_id="T2").status == "shipped"


def test_order_lines_are_replaced_only_by_a_file_that_has_item_columns(douyin, tmp_path):
    # given an order of two lines
    run(tmp_path, DOUYIN, DOUYIN_ROWS, douyin)
    assert stored("D1")[1:4] == ("shipped", Decimal("100.00"), Decimal("0.00"))

    # when a status export without item or amount columns completes it
    statuses = [["D1", "D1-1", "已完成"], ["D1", "D1-2", "已完成"]]
    job = run(tmp_path, ["主订单编号", "子订单编号", "订单状态"], statuses, douyin,
              preset="douyin_orders")  # fmt: skip

    # then its lines and amount stay
    assert job.orders_updated == 1
    assert stored("D1")[1:3] == ("completed", Decimal("100.00"))
    assert stored("D1")[8] == ["面膜", "面霜"]

    # when a full export shows the order's lines changed, they replace the stored ones
    rows = [list(row) for row in DOUYIN_ROWS]
    rows[1][1:5] = ["D1-3", "精华", "1", "50.00"]
    job = run(tmp_path, DOUYIN, rows, douyin)

    assert job.orders_updated == 1
    assert stored("D1")[2] == Decimal("110.00")
    assert stored("D1")[8] == ["精华", "面霜"]
    assert OrderItem.objects.count() == 2


def test_a_refund_on_one_line_of_a_multi_line_order_is_weighed_against_the_stored_amount(
    douyin, tmp_path
):
    run(tmp_path, DOUYIN, DOUYIN_ROWS, douyin)

    header = ["主订单编号", "子订单编号", "售后状态", "退款金额"]
    refunds = [["D1", "D1-1", "退款成功", "60.00"], ["D1", "D1-2", "无售后", ""]]
    job = run(tmp_path, header, refunds, douyin, preset="douyin_orders")

    assert job.orders_updated == 1
    assert stored("D1")[1:4] == ("partially_refunded", Decimal("100.00"), Decimal("60.00"))
    assert stored("D1")[8] == ["面膜", "面霜"]


def test_importing_the_same_file_again_writes_nothing_even_when_it_gives_only_part_of_an_order(
    tmall, tmp_path
):
    first = run(tmp_path, TAOBAO, TAOBAO_ROWS, tmall)
    again = run(tmp_path, TAOBAO, TAOBAO_ROWS, tmall)
    assert (first.orders_created, again.orders_created, again.orders_updated) == (3, 0, 0)

    # a partial export: buyer masked, no times, no item columns, a refund on T1
    header = ["订单编号", "买家会员名", "订单状态", "退款金额"]
    partial = [["T1", "t**a", "交易成功", "300"], ["T2", "t**a", "卖家已发货", ""]]
    run(tmp_path, header, partial, tmall, preset="taobao_orders")
    after_first = {ref: stored(ref) for ref in ("T1", "T2", "T3")}
    again = run(tmp_path, header, partial, tmall, preset="taobao_orders")

    assert (again.orders_created, again.orders_updated) == (0, 0)
    assert {ref: stored(ref) for ref in ("T1", "T2", "T3")} == after_first
    zhang = Identity.objects.get(kind="tmall_buyer", value="tb_zhang").customer_id
    assert after_first["T1"][:4] == (zhang, "partially_refunded", Decimal("1299.00"),
                                     Decimal("300.00"))  # fmt: skip
    assert after_first["T1"][8] == ["面霜"]
