"""Predicted lifetime value over the customer base: order histories in, predictions out.

The database side of siyu.segments.clv (docs/clv.md): one set-based query summarises every
live buyer's paid orders (the RFM rule, rfm.paid_orders_sql) in calendar days, NumPy fits and
scores on the distinct (frequency, recency, T) triples, and the predictions replace the
CustomerClv table in one bulk write. No query per customer. Also the reads of the model page.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
from django.db import connection, transaction
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone
from numpy.typing import NDArray

from siyu.core.bulk import bulk_insert
from siyu.customers.models import Customer
from siyu.customers.selectors import customers_visible_to
from siyu.org.selectors import Viewer
from siyu.segments import clv, rfm
from siyu.segments.models import ClvFit, CustomerClv

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DAY = 86_400
FETCH = 100_000  # rows per fetch: memory stays at a few arrays, not a million tuples
MAX_VALUE = 999_999_999_999.99  # the largest value_365 the column holds
HORIZONS = np.array([[90.0], [365.0]])  # days; one row of expected purchases each
# Just inside clv's search bounds (1e-6, 1e6): a parameter outside ended at a bound.
BOUNDS = (1.001e-6, 0.999e6)


class FitFailed(Exception):
    """The models could not be fitted or used on this data; the message says why."""


@dataclass(frozen=True)
class Histories:
    """One row per live buyer, in days. Calibration columns describe the orders up to the
    calibration end; a buyer whose first purchase came later has ``cal_purchases == 0``."""

    customer_id: IntArray
    frequency: FloatArray  # purchase days after the first one
    recency: FloatArray  # first to last purchase day
    T: FloatArray  # first purchase day to the as-of day
    monetary: FloatArray  # average value of the repeat purchase days (0 without any)
    cal_purchases: FloatArray  # purchase days up to the calibration end
    cal_recency: FloatArray
    cal_T: FloatArray
    holdout_purchases: FloatArray  # purchase days after the calibration end

    @property
    def size(self) -> int:
        return int(self.customer_id.size)


def utc_offset(as_of: datetime) -> int:
    """Seconds east of UTC of the organisation's zone at `as_of`, used for the whole history:
    in a zone with summer time a purchase within an hour of midnight may land on the
    neighbouring day, which a day-level model tolerates."""
    return int(timezone.localtime(as_of).utcoffset().total_seconds())


def day_number(moment: datetime, offset: int) -> int:
    """The calendar day of `moment` in the organisation's zone, counted from 1970-01-01."""
    return int((moment.timestamp() + offset) // DAY)


def _day_sql(vendor: str, expression: str, offset: int) -> str:
    if vendor == "postgresql":
        # date arithmetic, not EXTRACT(EPOCH …): that is NUMERIC, several times slower per order
        shifted = f"({expression} AT TIME ZONE 'UTC') + INTERVAL '{offset} seconds'"
        return f"(CAST({shifted} AS DATE) - DATE '1970-01-01')"
    return f"((CAST(strftime('%%s', {expression}) AS INTEGER) + {offset}) / {DAY})"


def histories_sql(vendor: str, *, as_of: datetime, calibration_end: datetime) -> rfm.Sql:
    """Per live buyer: id, purchase days, last − first day, the first day, the value of the
    repeat days, purchase days and last day up to the calibration end."""
    offset = utc_offset(as_of)
    orders, paid_time, params = rfm.paid_orders_sql(as_of=as_of)
    day = _day_sql(vendor, paid_time, offset)
    cal_day = day_number(calibration_end, offset)
    real = "DOUBLE PRECISION" if vendor == "postgresql" else "REAL"
    customer = Customer._meta.db_table
    text = f"""
WITH days AS (
    SELECT o.customer_id AS customer_id, {day} AS d, SUM(o.amount - o.refund_amount) AS value
    {orders}
      AND EXISTS (SELECT 1 FROM {customer} live
                  WHERE live.id = o.customer_id AND live.merged_into_id IS NULL)
    GROUP BY o.customer_id, {day}
),
marked AS (
    SELECT customer_id, d, value, MIN(d) OVER (PARTITION BY customer_id) AS first
    FROM days
)
SELECT customer_id,
       COUNT(*) - 1,
       MAX(d) - MIN(d),
       MIN(d),
       CAST(SUM(CASE WHEN d > first THEN value ELSE 0 END) AS {real}),
       SUM(CASE WHEN d <= {cal_day} THEN 1 ELSE 0 END),
       MAX(CASE WHEN d <= {cal_day} THEN d END)
FROM marked
GROUP BY customer_id
"""
    return rfm.Sql(text, params)


def buyer_histories(*, as_of: datetime, holdout_days: int) -> Histories:
    """Every live buyer's summaries at `as_of`, and at `holdout_days` before it."""
    calibration_end = as_of - timedelta(days=holdout_days)
    sql = histories_sql(connection.vendor, as_of=as_of, calibration_end=calibration_end)
    params = [connection.ops.adapt_datetimefield_value(p) for p in sql.params]
    chunks = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The window wants orders in customer order; the planner reads them through the
            # customer index, row by random row (26 s at 5M orders), instead of one sort (9 s).
            cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(sql.text, params)
        while rows := cursor.fetchmany(FETCH):
            # NULL (no purchase before the calibration end) becomes NaN
            chunks.append(np.array(rows, dtype=np.float64))
    table = np.concatenate(chunks) if chunks else np.empty((0, 7))
    ids, x, t_x, first, repeat_value, cal_n, cal_last = table.T
    offset = utc_offset(as_of)
    end, cal_end = day_number(as_of, offset), day_number(calibration_end, offset)
    in_calibration = cal_n > 0
    return Histories(
        customer_id=ids.astype(np.int64),
        frequency=x,
        recency=t_x,
        T=end - first,
        monetary=np.where(x > 0, repeat_value / np.maximum(x, 1), 0.0),
        cal_purchases=cal_n,
        cal_recency=np.where(in_calibration, cal_last - first, 0.0),
        cal_T=np.where(in_calibration, cal_end - first, 0.0),
        holdout_purchases=x + 1 - cal_n,
    )


@dataclass(frozen=True)
class Triples:
    """Distinct (frequency, recency, T) with how many buyers share each; ``inverse`` maps
    each buyer to their triple."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    weights: IntArray
    inverse: IntArray


def compress(frequency: FloatArray, recency: FloatArray, T: FloatArray) -> Triples:
    """Like clv.compress, plus the buyer → triple index for scoring. Whole days make each
    triple one integer, so finding the distinct triples is one sort of a million integers."""
    x, t_x, t_cal = (a.astype(np.int64) for a in (frequency, recency, T))
    radix = int(max(x.max(initial=0), t_cal.max(initial=0))) + 1  # recency is at most T
    keys = (x * radix + t_x) * radix + t_cal
    # np.unique(keys, return_inverse=True, return_counts=True), with one unstable sort: about
    # three times faster on a million buyers
    order = np.argsort(keys)
    ordered = keys[order]
    first = np.ones(keys.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    unique = ordered[first]
    counts = np.diff(np.append(np.flatnonzero(first), keys.size))
    return Triples(
        frequency=(unique // (radix * radix)).astype(np.float64),
        recency=(unique // radix % radix).astype(np.float64),
        T=(unique % radix).astype(np.float64),
        weights=counts,
        inverse=inverse,
    )


@dataclass(frozen=True)
class Model:
    bgnbd: clv.BgNbdParams
    gamma_gamma: clv.GammaGammaParams
    gamma_gamma_limits: list[str]  # parameters at the search bound (a limit of the model)
    repeat_buyers: int


@dataclass(frozen=True)
class Scores:
    p_alive: FloatArray
    purchases_90: FloatArray
    purchases_365: FloatArray
    value_365: FloatArray  # expected purchases in 365 days × expected value of one


def params_json(model: Model) -> dict:
    """What ClvFit.params stores of a successful fit."""
    bg, gg = model.bgnbd, model.gamma_gamma
    return {
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b},
        "gamma_gamma": {
            "p": gg.p,
            "q": gg.q,
            "v": gg.v,
            "log_likelihood": float(gg.log_likelihood),
            "limits": model.gamma_gamma_limits,
        },
        "repeat_buyers": model.repeat_buyers,
        "time_unit": "day",
    }


def _fit_bgnbd(triples: Triples) -> clv.BgNbdParams:
    try:
        params = clv.fit_bgnbd(
            triples.frequency, triples.recency, triples.T, weights=triples.weights
        )
    except ValueError as error:
        raise FitFailed(f"BG/NBD: {error}") from None
    if not params.converged:
        raise FitFailed("BG/NBD: the maximum-likelihood search did not converge")
    if params.a == 1:
        raise FitFailed("BG/NBD: a = 1 exactly, where expected purchases are undefined")
    return params


def _fit_gamma_gamma(x: FloatArray, m: FloatArray) -> tuple[clv.GammaGammaParams, list[str]]:
    """Gamma-Gamma on the repeat buyers' average spends; also the parameters that ended at
    the search bound.

    Fitted in units of the mean repeat purchase, so the bounds mean the same whatever the
    currency or price level. On small or very regular data the maximum likelihood can lie at
    a limit of the model: q, γ → ∞ when customers' average spends differ no more than chance
    makes them (everyone gets the population mean), p → ∞ when each customer always spends
    the same (everyone keeps their own average). The search stops at its bound, where the
    predictions equal the limit's, so those parameters are used and named.
    """
    scale = float(np.dot(x, m) / x.sum())  # mean value of a repeat purchase
    # not compressed: average spends are amounts of money, nearly all distinct
    fitted = clv.fit_gamma_gamma(x, m / scale)
    limits = [
        label
        for name, label in (("p", "p"), ("q", "q"), ("v", "γ"))
        if not BOUNDS[0] < getattr(fitted, name) < BOUNDS[1]
    ]
    if not (fitted.converged or (limits and np.isfinite(fitted.log_likelihood))):
        raise FitFailed("Gamma-Gamma: the maximum-likelihood search did not converge")
    if fitted.q <= 1:
        raise FitFailed(f"Gamma-Gamma: q = {fitted.q:.3f} ≤ 1, the mean spend is infinite")
    # back to currency: γ scales with the spends, the log-likelihood by the Jacobian
    params = replace(
        fitted,
        v=fitted.v * scale,
        log_likelihood=fitted.log_likelihood - fitted.n_customers * np.log(scale),
    )
    return params, limits


def fit_and_score(histories: Histories, triples: Triples) -> tuple[Model, Scores]:
    """Fit BG/NBD on the triples and Gamma-Gamma on the repeat buyers' spend, then score
    every buyer. Raises FitFailed with the reason when either model cannot be used."""
    if histories.size == 0:
        raise FitFailed("no buyers with paid orders")
    bgnbd = _fit_bgnbd(triples)
    # Repeat days of zero value (free orders) carry no spend to learn from.
    spends = (histories.frequency > 0) & (histories.monetary > 0)
    if not spends.any():
        raise FitFailed("Gamma-Gamma: no repeat purchase with a positive value")
    gamma_gamma, limits = _fit_gamma_gamma(histories.frequency[spends], histories.monetary[spends])

    # Purchases and P(alive) depend on the triple only: compute them once per triple.
    t = (triples.frequency, triples.recency, triples.T)
    p_alive = clv.probability_alive(bgnbd, *t)[triples.inverse]
    purchases_90, purchases_365 = clv.expected_purchases(bgnbd, HORIZONS, *t)[:, triples.inverse]
    # Buyers without spend to go on get the population mean (frequency 0 in Gamma-Gamma).
    value = clv.expected_average_value(
        gamma_gamma, np.where(spends, histories.frequency, 0), histories.monetary
    )
    model = Model(bgnbd, gamma_gamma, limits, int(spends.sum()))
    return model, Scores(p_alive, purchases_90, purchases_365, purchases_365 * value)


def holdout_check(histories: Histories, *, holdout_days: int) -> dict:
    """Fit BG/NBD on the orders before the holdout period and compare its predictions for the
    period with what the buyers did, by calibration frequency 0…7+ (Fader, Hardie & Lee 2005,
    fig. 4). Returns the JSON stored on ClvFit.holdout; ``error`` says why when it cannot."""
    known = histories.cal_purchases > 0
    result: dict = {"holdout_days": holdout_days, "customers": int(known.sum()), "rows": []}
    if not known.any():
        return {**result, "error": "no buyers before the holdout period"}
    x = histories.cal_purchases[known] - 1
    t_x, t_cal = histories.cal_recency[known], histories.cal_T[known]
    try:
        params = _fit_bgnbd(compress(x, t_x, t_cal))
    except FitFailed as failure:
        return {**result, "error": str(failure)}
    rows = clv.calibration_holdout(
        params, x, t_x, t_cal, histories.holdout_purchases[known], holdout_days
    )
    if not all(np.isfinite(row.predicted) for row in rows):
        return {**result, "error": "BG/NBD: the holdout predictions are not finite numbers"}
    result["params"] = {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b}
    result["rows"] = [
        {
            "frequency": row.frequency,
            "open_ended": row.open_ended,
            "customers": row.customers,
            "predicted": row.predicted,
            "actual": row.actual,
        }
        for row in rows
    ]
    return result


def predictions_write(customer_ids: IntArray, scores: Scores) -> int:
    """Replace every prediction with these, in one transaction of the caller's; returns the
    rows written. Buyers merged away since the read are dropped after the load."""
    finite = (
        np.isfinite(scores.p_alive)
        & np.isfinite(scores.purchases_90)
        & np.isfinite(scores.purchases_365)
        & np.isfinite(scores.value_365)
    )
    value = np.clip(scores.value_365, 0, MAX_VALUE)
    table, customer = CustomerClv._meta.db_table, Customer._meta.db_table
    with connection.cursor() as cursor:
        # TRUNCATE leaves no dead rows behind; it locks the table until the caller commits.
        empty = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
        cursor.execute(f"{empty} {table}")
    rows = zip(
        customer_ids[finite].tolist(),
        scores.p_alive[finite].tolist(),
        scores.purchases_90[finite].tolist(),
        scores.purchases_365[finite].tolist(),
        # exact two-decimal text: the column is a DECIMAL, and building Decimals costs more
        (f"{v:.2f}" for v in value[finite].tolist()),
        strict=True,
    )
    written = bulk_insert(
        CustomerClv,
        ["customer_id", "p_alive", "purchases_90", "purchases_365", "value_365"],
        rows,
        chunk_size=50_000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE customer_id IN "
            f"(SELECT id FROM {customer} WHERE merged_into_id IS NOT NULL)"
        )
        return written - cursor.rowcount


# ------------------------------------------------------------------------- the model page

VALUE_EDGES = (0, 50, 100, 200, 500, 1000, 2000, 5000, 10000)  # CNY; the last is open-ended
ALIVE_STEPS = 10  # P(alive) in tenths


@dataclass(frozen=True)
class Meaning:
    """What the fitted parameters say in the brand's terms."""

    purchases_per_year: float  # mean purchase rate while active, r / α per day
    dropout: float  # mean chance of leaving after a purchase, a / (a + b)
    mean_value: float  # population mean value of a purchase, p γ / (q − 1)


@dataclass(frozen=True)
class ClvPage:
    fit: ClvFit | None  # the latest fit that succeeded
    failed: ClvFit | None  # the latest attempt, when it failed after that
    meaning: Meaning | None
    scored: int  # the viewer's customers with a prediction
    total_value: float
    mean_alive: float | None
    value_buckets: list[tuple[str, int]]
    alive_buckets: list[tuple[str, int]]


def clv_page(viewer: Viewer) -> ClvPage:
    """The latest fit and the distribution of the viewer's predictions; three queries."""
    attempt = ClvFit.objects.order_by("-created_at", "-id").first()
    fit = attempt
    if attempt is not None and attempt.failure:
        fit = ClvFit.objects.filter(log_likelihood__isnull=False).order_by("-created_at").first()
    meaning = None
    if fit is not None:
        bg, gg = fit.params["bgnbd"], fit.params["gamma_gamma"]
        meaning = Meaning(
            purchases_per_year=365 * bg["r"] / bg["alpha"],
            dropout=bg["a"] / (bg["a"] + bg["b"]),
            mean_value=gg["p"] * gg["v"] / (gg["q"] - 1),
        )
    edges = [*VALUE_EDGES, None]
    value_counts = {
        f"v{i}": Count("pk", filter=Q(value_365__gte=lo) & (Q(value_365__lt=hi) if hi else Q()))
        for i, (lo, hi) in enumerate(pairwise(edges))
    }
    alive_counts = {
        f"a{i}": Count(
            "pk",
            filter=Q(p_alive__gte=i / ALIVE_STEPS)
            & (Q(p_alive__lt=(i + 1) / ALIVE_STEPS) if i < ALIVE_STEPS - 1 else Q()),
        )
        for i in range(ALIVE_STEPS)
    }
    row = CustomerClv.objects.filter(customer__in=customers_visible_to(viewer)).aggregate(
        scored=Count("pk"),
        total=Sum("value_365"),
        alive=Avg("p_alive"),
        **value_counts,
        **alive_counts,
    )
    value_labels = [f"¥{lo:,}–{hi:,}" if hi else f"¥{lo:,}+" for lo, hi in pairwise(edges)]
    alive_labels = [f"{10 * i}–{10 * (i + 1)}%" for i in range(ALIVE_STEPS)]
    return ClvPage(
        fit=fit,
        failed=attempt if attempt is not fit else None,
        meaning=meaning,
        scored=row["scored"],
        total_value=float(row["total"] or 0),
        mean_alive=row["alive"],
        value_buckets=[(label, row[f"v{i}"]) for i, label in enumerate(value_labels)],
        alive_buckets=[(label, row[f"a{i}"]) for i, label in enumerate(alive_labels)],
    )
