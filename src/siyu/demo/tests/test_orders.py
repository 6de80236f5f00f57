from collections import Counter
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, F

from siyu.commerce.models import Order
from siyu.customers.models import Customer, Identity, MergeRecord
from siyu.demo import services
from siyu.demo.context import SeedContext
from siyu.demo.orders import EXPORTS, Buyer, buyer_orders, platform_buyers, seed_orders
from siyu.demo.services import demo_seed, seed_layers
from siyu.imports.models import ImportJob
from siyu.imports.presets import detect
from siyu.segments.models import CustomerClv, StageChange

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
TODAY = date(2025, 6, 30)
STAGES = ("lead", "engaged", "first_purchase", "repeat", "member", "at_risk", "lost")
TMALL, JD, DOUYIN = EXPORTS


def _buyers(count: int) -> list[Buyer]:
    return [
        Buyer(
            customer_id=1_000 + n,
            number=n,
            buyer_id=f"tb{n:010d}",
            name="" if n % 10 == 0 else "李娜",
            phone="" if n % 3 == 0 else f"+86138{n:08d}",
            first_seen_at=NOW - timedelta(days=700 * (n % 97) / 97),
            stage=STAGES[n % len(STAGES)],
            arrived_here=n % 2 == 0,
        )
        for n in range(count)
    ]


def _generate(export, buyers, seed=42) -> list:
    ctx = SeedContext(seed=seed, customers=len(buyers), now=NOW)
    return [order for buyer in buyers for order in buyer_orders(ctx, export, buyer)]


def test_the_same_seed_generates_the_same_orders():
    # given the same buyers generated for twice with one seed
    buyers = _buyers(500)
    first, second = _generate(TMALL, buyers), _generate(TMALL, buyers)
    # then the orders are the same, and another seed gives other orders
    assert first == second
    assert _generate(TMALL, buyers, seed=7) != first


def test_generated_orders_are_plausible():
    # given the orders of a few thousand buyers
    buyers = _buyers(3_000)
    orders = _generate(JD, buyers)
    per_buyer = Counter(order.buyer.number for order in orders)
    counts = [per_buyer[buyer.number] for buyer in buyers]
    # then most buyers have 0–3 orders, and a loyal few have 5–20: a heavy tail
    assert sum(c <= 3 for c in counts) > 0.8 * len(counts)
    assert 0.03 * len(counts) < sum(c >= 5 for c in counts) < 0.15 * len(counts)
    assert 10 <= max(counts) <= 20
    # and every order is paid after the buyer was first seen and before now
    for order in orders:
        assert order.buyer.first_seen_at <= order.placed_at <= NOW
        assert order.paid_at is None or order.placed_at < order.paid_at <= NOW
        assert order.amount == sum(line.amount for line in order.lines) > 0
        assert order.refund == sum(line.refund for line in order.lines)
        assert 1 <= len(order.lines) <= 3
    # and refunds are rare, in full (the amount paid) or in part
    statuses = Counter(order.status for order in orders)
    assert 0.03 < statuses[Order.Status.REFUNDED] / len(orders) < 0.08
    assert statuses[Order.Status.COMPLETED] > 0.8 * len(orders)
    refunded = [o for o in orders if o.status == Order.Status.REFUNDED]
    assert all(o.refund == o.amount for o in refunded)
    partial = [o for o in orders if o.status == Order.Status.PARTIALLY_REFUNDED]
    assert partial and all(0 < o.refund < o.amount for o in partial)
    assert all(o.paid_at is None for o in orders if o.status == Order.Status.PENDING)


def test_phones_are_masked_as_the_platforms_mask_them():
    # given Tmall and JD orders of buyers, some with a known phone
    buyers = _buyers(1_000)
    for export, low, high in ((TMALL, 0.05, 0.2), (JD, 0.3, 0.6)):
        orders = _generate(export, buyers)
        full = [o for o in orders if "*" not in o.phone]
        # then a full number is only ever the buyer's own, on a parcel to themselves
        assert all(f"+86{o.phone}" == o.buyer.phone and o.receiver == o.buyer.name for o in full)
        # and Tmall shows most of those masked, JD many in full
        own = [o for o in orders if o.buyer.phone and o.receiver == o.buyer.name]
        assert low < len(full) / len(own) < high
        masked = next(o.phone for o in orders if "*" in o.phone)
        assert len(masked) == 11 and masked[3:7] == "****"


def test_each_export_header_is_recognised_as_its_platform():
    # given the header each platform export is written with
    # then the import pipeline detects the platform from it
    assert detect(list(TMALL.header), "order").preset.key == "taobao_orders"
    assert detect(list(JD.header), "order").preset.key == "jd_orders"
    assert detect(list(DOUYIN.header), "order").preset.key == "douyin_orders"


@pytest.fixture
def seeded(db, monkeypatch) -> SeedContext:
    # The orders are checked as the order step wrote them, before layering recomputes stages
    # (the generator draws each buyer's orders from the stage the seed gave them).
    monkeypatch.setattr(services, "STEPS", [s for s in services.STEPS if s is not seed_layers])
    return demo_seed(customers=300, today=TODAY)


def test_the_demo_layers_customers_from_their_orders(db):
    # given a seeded demo brand
    ctx = demo_seed(customers=300, today=TODAY)
    # then RFM groups, super users and recorded stage changes follow from the imported orders
    assert ctx.counts["rfm scored"] == Customer.objects.exclude(rfm_group="").count() > 0
    assert Customer.objects.filter(is_super_user=True).exists()
    assert StageChange.objects.count() == ctx.counts["stage changes"] > 0
    # and every buyer has a predicted lifetime value from a fit that succeeded
    assert ctx.counts["clv scored"] == CustomerClv.objects.count() == ctx.counts["rfm scored"]


def test_orders_are_imported_onto_the_customers_whose_buyer_ids_they_carry(seeded):
    # given a seeded database
    jobs = ImportJob.objects.order_by("pk")
    # then one import per platform ran, clean, matching every buyer and creating nobody
    assert [(j.preset, j.state) for j in jobs] == [
        ("taobao_orders", "done"),
        ("jd_orders", "done"),
        ("douyin_orders", "done"),
    ]
    assert jobs[0].encoding == "gb18030"
    assert all(j.created == j.merged == j.invalid == 0 for j in jobs)
    assert seeded.counts["orders"] == Order.objects.count() > 300
    # and each order belongs to the customer holding the buyer id it was generated for
    for export in EXPORTS:
        expected = {}
        for buyer in platform_buyers(seeded, export):
            for order in buyer_orders(seeded, export, buyer):
                expected[order.serial] = (buyer.customer_id, order.amount, order.status)
        loaded = Order.objects.filter(channel__code=export.code)
        assert loaded.count() == len(expected) > 20
        got = Counter(loaded.values_list("customer_id", "amount", "status"))
        assert got == Counter(expected.values())
        owners = Identity.objects.filter(kind=export.kind).values("customer_id")
        assert not loaded.exclude(customer_id__in=owners).exists()


def test_seeded_orders_have_the_shape_of_real_trade(seeded):
    # given a seeded database
    orders = Order.objects.all()
    # then there are lines, refunds in full and in part, cancellations, and a loyal few
    assert orders.filter(items__isnull=True).count() == 0
    refunded = orders.filter(status=Order.Status.REFUNDED)
    assert refunded.exists() and not refunded.exclude(refund_amount=F("amount")).exists()
    partial = orders.filter(status=Order.Status.PARTIALLY_REFUNDED)
    assert all(0 < o.refund_amount < o.amount for o in partial)
    assert orders.filter(status=Order.Status.CANCELLED).exists()
    per_customer = orders.values("customer", "channel").annotate(n=Count("pk"))
    assert max(row["n"] for row in per_customer) >= 5
    # and paid after the customer was first seen, before the seed's clock
    assert not orders.filter(paid_at__lt=F("customer__first_seen_at")).exists()
    assert not orders.filter(paid_at__gt=seeded.now).exists()


def test_masked_phones_stay_display_only(db):
    # given a seed without orders, and what it knows of people
    ctx = demo_seed(customers=300, today=TODAY, orders=False)
    before = (Customer.objects.count(), Identity.objects.count(), MergeRecord.objects.count())
    # when the orders are imported
    seed_orders(ctx)
    # then no identity, customer or merge came of them, masked numbers included
    after = (Customer.objects.count(), Identity.objects.count(), MergeRecord.objects.count())
    assert after == before
    assert not Identity.objects.filter(value__contains="*").exists()
    assert Order.objects.filter(phone_display__contains="****").count() > 100


def _fingerprint() -> list:
    """The orders apart from numbers and customer ids, which a database never hands out twice."""
    return sorted(
        Order.objects.annotate(lines=Count("items")).values_list(
            "channel__code", "amount", "refund_amount", "status", "placed_at", "paid_at", "lines"
        ),
        key=repr,
    )


def test_seeding_twice_gives_the_same_orders(seeded):
    # given a seeded database and its orders
    first = _fingerprint()
    # when everything is removed and the same seed runs again
    Order.objects.all().delete()
    MergeRecord.objects.all().delete()
    Customer.objects.update(merged_into=None)
    Customer.objects.all().delete()
    demo_seed(customers=300, today=TODAY)
    # then the same orders are back
    assert _fingerprint() == first
    assert sum(1 for o in first if o[3] == Order.Status.REFUNDED) > 0


def test_no_orders_leaves_them_out(db):
    # given a seed run with --no-orders
    out = StringIO()
    call_command("seed", "--customers", "100", "--today", "2025-06-30", "--no-orders", stdout=out)
    # then there are customers, and no orders or imports
    assert Customer.objects.exists() and "orders" not in out.getvalue()
    assert not Order.objects.exists() and not ImportJob.objects.exists()
