from datetime import timedelta
from decimal import Decimal

import pytest

from siyu.commerce.models import Order
from siyu.customers.models import Customer
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.models import RfmScheme
from siyu.segments.rfm import GRID, rfm_group_of
from siyu.segments.selectors import super_users
from siyu.segments.services import rfm_recompute
from siyu.segments.tests.helpers import AS_OF, days_ago, order

pytestmark = pytest.mark.django_db


def fresh(customer: Customer) -> Customer:
    customer.refresh_from_db()
    return customer


def test_recency_frequency_and_monetary_count_paid_orders_net_of_refunds():
    buyer = CustomerFactory()
    order(buyer, days=3, amount="100")
    order(buyer, days=10, amount="50", status=Order.Status.COMPLETED)
    order(buyer, days=20, amount="80", refund="30", status=Order.Status.PARTIALLY_REFUNDED)
    order(buyer, days=1, amount="999", status=Order.Status.PENDING)
    order(buyer, days=1, amount="999", status=Order.Status.CANCELLED)
    order(buyer, days=1, amount="999", status=Order.Status.REFUNDED)

    rfm_recompute(as_of=AS_OF)

    buyer = fresh(buyer)
    assert (buyer.rfm_last_paid_at, buyer.rfm_frequency) == (days_ago(3), 3)
    assert buyer.rfm_monetary == Decimal("200.00")


def test_customers_without_paid_orders_get_no_scores():
    nobody = CustomerFactory()
    order(nobody, status=Order.Status.PENDING)
    order(CustomerFactory())

    summary = rfm_recompute(as_of=AS_OF)

    nobody = fresh(nobody)
    assert (nobody.rfm_r, nobody.rfm_f, nobody.rfm_m, nobody.rfm_group) == (None, None, None, "")
    assert (nobody.rfm_last_paid_at, nobody.rfm_frequency, nobody.rfm_monetary) == (None, 0, 0)
    assert summary.scored == 1


def test_a_full_refund_removes_the_order_from_f_and_m_and_drops_the_group():
    buyer = CustomerFactory()
    order(buyer, days=2, amount="500")
    refunded = order(buyer, days=1, amount="500")
    others = [CustomerFactory() for _ in range(4)]
    for i, other in enumerate(others):
        order(other, days=3 + i, amount="100")
    rfm_recompute(as_of=AS_OF)
    before = fresh(buyer)
    assert (before.rfm_frequency, before.rfm_monetary, before.rfm_group) == (2, 1000, "champions")

    # A refund in full on a "paid" order counts like the refunded status.
    refunded.refund_amount = refunded.amount
    refunded.save()
    rfm_recompute(as_of=AS_OF)

    after = fresh(buyer)
    assert (after.rfm_frequency, after.rfm_monetary, after.rfm_last_paid_at) == (
        1,
        500,
        days_ago(2),
    )
    assert (after.rfm_r, after.rfm_f, after.rfm_m) == (5, 1, 5)
    assert after.rfm_group == "potential_loyalists"


def test_an_order_exactly_at_the_window_edge_counts_and_one_second_older_does_not(settings):
    settings.SIYU_RFM_WINDOW_DAYS = 365
    edge, outside = CustomerFactory(), CustomerFactory()
    order(edge, days=365, amount="70")
    order(outside, days=365 + 1 / 86400, amount="70")

    rfm_recompute(as_of=AS_OF)

    edge, outside = fresh(edge), fresh(outside)
    assert (edge.rfm_frequency, edge.rfm_monetary, edge.rfm_last_paid_at) == (1, 70, days_ago(365))
    # Outside the window it still has a paid order: scored, with recency but no F or M.
    assert (outside.rfm_frequency, outside.rfm_monetary) == (0, 0)
    assert outside.rfm_last_paid_at == days_ago(365 + 1 / 86400)
    assert outside.rfm_r is not None


def test_quintiles_of_ten_distinct_recencies_score_two_customers_each():
    customers = [CustomerFactory() for _ in range(10)]
    for days, customer in enumerate(customers, start=1):
        order(customer, days=days)

    rfm_recompute(as_of=AS_OF)

    scores = [fresh(c).rfm_r for c in customers]
    assert scores == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_quintiles_give_equal_values_the_same_score():
    customers = [CustomerFactory() for _ in range(10)]
    for i, customer in enumerate(customers):
        order(customer, days=5, amount="100" if i < 7 else "300")

    rfm_recompute(as_of=AS_OF)

    assert [fresh(c).rfm_m for c in customers] == [1] * 7 + [4] * 3
    assert {fresh(c).rfm_r for c in customers} == {1}


def test_thresholds_mode_scores_by_the_brands_cut_points():
    RfmScheme.objects.create(
        mode=RfmScheme.Mode.THRESHOLDS,
        thresholds={"r": [7, 30, 90, 180], "f": [2, 3, 5, 8], "m": [100, 500, 1000, 5000]},
    )
    recent, old = CustomerFactory(), CustomerFactory()
    for _ in range(3):
        order(recent, days=7, amount="200")  # 3 orders, 600
    order(old, days=200, amount="99.99")

    summary = rfm_recompute(as_of=AS_OF)

    assert summary.mode == "thresholds"
    recent, old = fresh(recent), fresh(old)
    assert (recent.rfm_r, recent.rfm_f, recent.rfm_m) == (5, 3, 3)
    assert (old.rfm_r, old.rfm_f, old.rfm_m) == (1, 1, 1)
    assert (recent.rfm_group, old.rfm_group) == ("potential_loyalists", "lost")


def test_malformed_thresholds_are_refused():
    from django.core.exceptions import ValidationError

    RfmScheme.objects.create(mode=RfmScheme.Mode.THRESHOLDS, thresholds={"r": [1, 2, 3]})
    with pytest.raises(ValidationError):
        rfm_recompute(as_of=AS_OF)


@pytest.mark.parametrize(
    ("r", "f", "m", "group"),
    [
        (5, 5, 5, "champions"),
        (5, 5, 4, "champions"),
        (5, 1, 1, "new_customers"),
        (4, 1, 1, "promising"),
        (4, 4, 5, "loyal"),
        (3, 3, 3, "need_attention"),
        (3, 1, 2, "about_to_sleep"),
        (5, 2, 3, "potential_loyalists"),
        (2, 3, 4, "at_risk"),
        (1, 5, 5, "cannot_lose_them"),
        (2, 1, 2, "hibernating"),
        (1, 1, 1, "lost"),
        (None, None, None, ""),
    ],
)
def test_named_groups_follow_the_documented_map(r, f, m, group):
    assert rfm_group_of(r, f, m) == group


def test_the_map_names_all_eleven_groups():
    assert {g for row in GRID.values() for g in row} == set(Customer.RfmGroup.values) - {""}


def test_the_sql_and_the_python_map_agree():
    RfmScheme.objects.create(
        mode=RfmScheme.Mode.THRESHOLDS,
        thresholds={"r": [1, 2, 3, 4], "f": [2, 3, 4, 5], "m": [2, 3, 4, 5]},
    )
    customers = []
    for days in (0.5, 1.5, 2.5, 3.5, 4.5):
        for n in (1, 3, 5):
            customer = CustomerFactory()
            for _ in range(n):
                order(customer, days=days, amount="1")
            customers.append(customer)

    rfm_recompute(as_of=AS_OF)

    for customer in map(fresh, customers):
        assert customer.rfm_group == rfm_group_of(customer.rfm_r, customer.rfm_f, customer.rfm_m)


def test_a_customer_whose_orders_are_all_cancelled_is_reset():
    buyer = CustomerFactory()
    paid = order(buyer)
    rfm_recompute(as_of=AS_OF)
    assert fresh(buyer).rfm_group

    Order.objects.filter(pk=paid.pk).update(status=Order.Status.CANCELLED)
    summary = rfm_recompute(as_of=AS_OF)

    buyer = fresh(buyer)
    assert (buyer.rfm_r, buyer.rfm_group, buyer.rfm_last_paid_at, buyer.rfm_monetary) == (
        None,
        "",
        None,
        0,
    )
    assert summary.groups == {}


def test_super_users_are_the_fewest_customers_bringing_the_share(settings):
    settings.SIYU_SUPER_USER_SHARE = 80
    customers = [CustomerFactory() for _ in range(6)]
    for customer, amount in zip(customers, ("50", "30", "10", "5", "5"), strict=False):
        order(customer, amount=amount)

    summary = rfm_recompute(as_of=AS_OF)
    result = super_users(share=0.8)

    assert summary.super_users == 2
    assert [fresh(c).is_super_user for c in customers] == [True, True] + [False] * 4
    assert (result.customers, result.buyers, result.threshold) == (2, 5, Decimal("30"))
    assert result.total == Decimal("100")
    assert result.curve == [(0.0, 0.0), (0.2, 0.5), (0.4, 0.8), (0.6, 0.9), (0.8, 0.95), (1, 1)]


def test_super_users_of_an_empty_base():
    result = super_users()
    assert (result.customers, result.threshold, result.curve) == (0, None, [])


def test_merged_away_customers_are_not_scored():
    from siyu.customers.services import customers_merge

    survivor, absorbed = CustomerFactory(), CustomerFactory()
    order(absorbed, amount="10")
    rfm_recompute(as_of=AS_OF)
    customers_merge(survivor=survivor, absorbed=[absorbed])

    rfm_recompute(as_of=AS_OF)

    assert fresh(survivor).rfm_monetary == 10
    assert (fresh(absorbed).rfm_group, fresh(absorbed).rfm_r) == ("", None)


def test_recomputing_twice_gives_the_same_result():
    for days in range(1, 8):
        order(CustomerFactory(), days=days, amount=str(days * 10))
    first = rfm_recompute(as_of=AS_OF)
    second = rfm_recompute(as_of=AS_OF)
    assert first.groups == second.groups


def test_a_second_recompute_with_no_change_writes_nothing():
    for days in range(1, 8):
        order(CustomerFactory(), days=days, amount=str(days * 10))
    assert rfm_recompute(as_of=AS_OF).written == 7

    assert rfm_recompute(as_of=AS_OF).written == 0
    # A day later every recency has grown by one, but no rank or value moved.
    assert rfm_recompute(as_of=AS_OF + timedelta(days=1)).written == 0


def test_a_change_in_one_customer_writes_only_that_customer():
    RfmScheme.objects.create(
        mode=RfmScheme.Mode.THRESHOLDS,
        thresholds={"r": [7, 30, 90, 180], "f": [2, 3, 5, 8], "m": [100, 500, 1000, 5000]},
    )
    customers = [CustomerFactory() for _ in range(5)]
    for days, customer in enumerate(customers, start=1):
        order(customer, days=days * 10, amount="100")
    rfm_recompute(as_of=AS_OF)
    before = [fresh(c) for c in customers]

    order(customers[-1], days=0.5, amount="100")
    summary = rfm_recompute(as_of=AS_OF)

    assert summary.written == 1
    after = [fresh(c) for c in customers]
    assert (after[-1].rfm_frequency, after[-1].rfm_last_paid_at) == (2, days_ago(0.5))
    assert (after[-1].rfm_r, after[-1].rfm_f, after[-1].rfm_m) == (5, 2, 2)
    assert [(c.rfm_r, c.rfm_group) for c in after[:-1]] == [
        (c.rfm_r, c.rfm_group) for c in before[:-1]
    ]
