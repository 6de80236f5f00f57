"""clv_recompute: order histories from the database, fitted and scored as clv.py does."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.commerce.models import Order
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.segments import clv, clv_data
from siyu.segments.models import ClvFit, CustomerClv
from siyu.segments.services import clv_recompute
from siyu.segments.tests.helpers import AS_OF

pytestmark = pytest.mark.django_db


def build_buyers(n: int, *, seed: int = 7) -> dict:
    """`n` buyers with orders on whole days before AS_OF (at AS_OF's clock time, so calendar
    days are exact). Returns per customer id the purchase days (days before AS_OF) and the
    value of each purchase day, as the model sees them."""
    rng = np.random.default_rng(seed)
    channel = ChannelFactory(code="tmall")
    customers = [CustomerFactory() for _ in range(n)]
    histories, orders = {}, []
    T_all = rng.integers(20, 400, n)
    # purchases as the BG/NBD process draws them (rates in days), on whole days
    x_all, t_x_all = clv.simulate_bgnbd(rng, T_all, r=0.6, alpha=40.0, a=0.7, b=2.5)
    for customer, T, x, t_x in zip(customers, T_all.tolist(), x_all, t_x_all, strict=True):
        # spend as the Gamma-Gamma model draws it: a mean per buyer, gamma-spread orders
        nu = rng.gamma(4.0, 1 / 150.0)
        x = min(int(x), T)
        last = min(max(int(np.ceil(t_x)), x), T)
        between = rng.choice(np.arange(1, last), size=max(x - 1, 0), replace=False)
        later = sorted([*between.tolist(), last]) if x else []
        days = [T, *(T - d for d in later)]  # days before AS_OF, first purchase first
        values = {}
        for ago in days:
            amount = Decimal(max(1, round(rng.gamma(6.0, 1 / nu))))
            values[ago] = amount
            orders.append((customer, ago, amount))
        histories[customer.pk] = values
    # a second order on a purchase day counts once, with both values
    customer, ago, _ = orders[0]
    orders.append((customer, ago, Decimal("15")))
    histories[customer.pk][ago] += Decimal("15")
    Order.objects.bulk_create(
        Order(
            channel=channel,
            external_id=f"C{i}",
            customer=customer,
            status=Order.Status.PAID,
            amount=amount,
            placed_at=AS_OF - timedelta(days=ago),
            paid_at=AS_OF - timedelta(days=ago),
        )
        for i, (customer, ago, amount) in enumerate(orders)
    )
    return histories


def summaries(histories: dict) -> tuple[list[int], np.ndarray, ...]:
    ids, x, t_x, T, m = [], [], [], [], []
    for pk, values in sorted(histories.items()):
        days = sorted(values, reverse=True)  # oldest first
        ids.append(pk)
        x.append(len(days) - 1)
        t_x.append(days[0] - days[-1])
        T.append(days[0])
        repeat = [float(values[d]) for d in days[1:]]
        m.append(sum(repeat) / len(repeat) if repeat else 0.0)
    return ids, *(np.array(a, dtype=float) for a in (x, t_x, T, m))


def stored() -> dict[int, tuple]:
    return {
        row.customer_id: (row.p_alive, row.purchases_90, row.purchases_365, row.value_365)
        for row in CustomerClv.objects.all()
    }


def test_predictions_agree_with_the_models_called_directly():
    histories = build_buyers(150)
    ids, x, t_x, T, m = summaries(histories)

    fit = clv_recompute(as_of=AS_OF, holdout_days=60)

    assert fit.failure == ""
    assert (fit.customers, fit.params["repeat_buyers"]) == (150, int((x > 0).sum()))
    f, r, t, weights = clv.compress(x, t_x, T)
    bg = clv.fit_bgnbd(f, r, t, weights=weights)
    gg = clv.fit_gamma_gamma(*clv.compress_monetary(x, m))
    for name in ("r", "alpha", "a", "b"):
        assert fit.params["bgnbd"][name] == pytest.approx(getattr(bg, name), rel=1e-4), name
    for name in ("p", "q", "v"):
        assert fit.params["gamma_gamma"][name] == pytest.approx(getattr(gg, name), rel=1e-4)
    assert fit.log_likelihood == pytest.approx(bg.log_likelihood, rel=1e-6)
    assert fit.triples == f.size

    rows = stored()
    assert sorted(rows) == ids
    p_alive = clv.probability_alive(bg, x, t_x, T)
    n90 = clv.expected_purchases(bg, 90, x, t_x, T)
    n365 = clv.expected_purchases(bg, 365, x, t_x, T)
    value = n365 * clv.expected_average_value(gg, x, m)
    for i, pk in enumerate(ids):
        got = rows[pk]
        assert got[:3] == pytest.approx((p_alive[i], n90[i], n365[i]), rel=1e-3)
        assert float(got[3]) == pytest.approx(value[i], rel=1e-3, abs=0.006)


def test_the_holdout_check_counts_what_buyers_did_after_the_calibration_end():
    histories = build_buyers(150, seed=11)

    fit = clv_recompute(as_of=AS_OF, holdout_days=60)

    rows = fit.holdout["rows"]
    # an order exactly 60 days back falls on the calibration end day: calibration period
    before = {pk: [d for d in v if d >= 60] for pk, v in histories.items()}
    known = {pk: days for pk, days in before.items() if days}
    assert fit.holdout["customers"] == len(known) == sum(r["customers"] for r in rows)
    assert [r["frequency"] for r in rows] == sorted(r["frequency"] for r in rows)
    zero = [pk for pk, days in known.items() if len(days) == 1]
    actual = sum(len(histories[pk]) - 1 for pk in zero) / len(zero)
    assert rows[0] == pytest.approx(
        {**rows[0], "frequency": 0, "customers": len(zero), "actual": actual}
    )
    assert all(r["predicted"] >= 0 for r in rows)


def test_a_second_run_gives_the_same_predictions():
    build_buyers(150)
    clv_recompute(as_of=AS_OF)
    first = stored()

    clv_recompute(as_of=AS_OF)

    assert stored() == first
    assert ClvFit.objects.count() == 2


def test_without_repeat_buyers_the_failure_is_recorded_and_predictions_stay():
    build_buyers(150)
    clv_recompute(as_of=AS_OF)
    before = stored()
    assert before
    # every order after each buyer's first is cancelled: nobody has bought twice
    firsts = Order.objects.order_by("customer_id", "paid_at").distinct()
    first_ids = {}
    for pk, customer_id in firsts.values_list("pk", "customer_id"):
        first_ids.setdefault(customer_id, pk)
    Order.objects.exclude(pk__in=first_ids.values()).update(status=Order.Status.CANCELLED)

    fit = clv_recompute(as_of=AS_OF)

    assert "repeat purchase" in fit.failure
    assert fit.log_likelihood is None and fit.customers == 150
    assert stored() == before


def test_when_every_purchase_costs_the_same_gamma_gamma_is_used_at_its_limit():
    build_buyers(150)
    Order.objects.update(amount=Decimal("100"))

    fit = clv_recompute(as_of=AS_OF)

    # the likelihood grows without end towards no spread at all: the search stops at a bound
    assert fit.failure == ""
    assert fit.params["gamma_gamma"]["limits"]
    for row in CustomerClv.objects.filter(purchases_365__gt=0.01):
        assert float(row.value_365) / row.purchases_365 == pytest.approx(100, rel=1e-2)


def test_an_empty_base_records_a_failure():
    fit = clv_recompute(as_of=AS_OF)
    assert fit.failure == "no buyers with paid orders"
    assert not CustomerClv.objects.exists()


def test_a_merge_drops_the_absorbed_customers_prediction():
    histories = build_buyers(150)
    clv_recompute(as_of=AS_OF)
    survivor, absorbed = sorted(histories)[:2]

    customers_merge(
        survivor=CustomerFactory._meta.model.objects.get(pk=survivor),
        absorbed=[CustomerFactory._meta.model.objects.get(pk=absorbed)],
    )

    assert not CustomerClv.objects.filter(customer_id=absorbed).exists()
    assert CustomerClv.objects.filter(customer_id=survivor).exists()
    # the next fit scores the survivor on both histories and nobody else appears
    fit = clv_recompute(as_of=AS_OF)
    assert fit.customers == 149
    assert set(stored()) == set(histories) - {absorbed}


def test_the_number_of_queries_does_not_grow_with_the_buyers():
    def queries(n: int, seed: int) -> int:
        CustomerClv.objects.all().delete()
        Order.objects.all().delete()
        build_buyers(n, seed=seed)
        with CaptureQueriesContext(connection) as captured:
            assert clv_recompute(as_of=AS_OF).failure == ""
        return len(captured)

    assert queries(150, 1) == queries(300, 2)


def test_a_holdout_of_less_than_a_day_is_refused():
    with pytest.raises(ValueError):
        clv_recompute(as_of=AS_OF, holdout_days=0)


def test_compress_gives_the_distinct_triples_counts_and_each_buyers_triple():
    rng = np.random.default_rng(5)
    T = rng.integers(0, 40, 5000)
    x = rng.integers(0, 45, 5000)  # more purchases than days, as a simulation may draw
    t_x = np.minimum(rng.integers(0, 40, 5000), T)

    triples = clv_data.compress(x, t_x, T)

    unique, inverse, counts = np.unique(
        np.column_stack([x, t_x, T]), axis=0, return_inverse=True, return_counts=True
    )
    assert np.array_equal(np.column_stack([triples.frequency, triples.recency, triples.T]), unique)
    assert np.array_equal(triples.weights, counts)
    assert np.array_equal(triples.inverse, inverse.ravel())
