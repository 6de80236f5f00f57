"""Predicted customer lifetime value: BG/NBD for purchase counts, Gamma-Gamma for spend.

Pure NumPy/SciPy; no database. Each customer is summarised by:

* ``frequency`` – number of *repeat* purchases (purchase days after the first one),
* ``recency``   – time from the first purchase to the last purchase (0 if no repeat purchase),
* ``T``         – time from the first purchase to the end of the observation period,
* ``monetary``  – average value of the repeat purchases (Gamma-Gamma only).

**Time unit.** ``recency``, ``T`` and every horizon ``t`` must be in one unit of the caller's
choice (days, weeks, …); the fitted ``alpha`` is then in that unit too, and predictions for
"the next 90 days" need ``t = 90 / time_unit_days``. Functions that mix in calendar time
(:func:`customer_lifetime_value`, :func:`score_customers`) take ``time_unit_days`` explicitly:
1 if recency/T are in days, 7 if in weeks.

Models:

* BG/NBD – Fader, Hardie & Lee (2005), "'Counting your customers' the easy way: an
  alternative to the Pareto/NBD model", Marketing Science 24(2). Likelihood eq. (6),
  E[X(t)] eq. (9), E[Y(t) | x, t_x, T] eq. (10), P(alive) as in Fader, Hardie & Lee (2008),
  "Computing P(alive) using the BG/NBD model".
* Gamma-Gamma – Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for
  customer base analysis", JMR 42(4); Fader & Hardie (2013), "The Gamma-Gamma model of
  monetary value".

Fitting is maximum likelihood over log-parameters with BFGS and an analytic gradient.
For large customer bases call :func:`compress` first and pass the counts as ``weights``: the
likelihood only depends on the (frequency, recency, T) triple, so the fit is identical and its
cost scales with the number of distinct triples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

FloatArray = NDArray[np.float64]

DAYS_PER_MONTH = 365.25 / 12
_LOG_BOUNDS = (np.log(1e-6), np.log(1e6))  # keeps exp(log-parameter) finite during search
# The objective is a mean negative log-likelihood (order 1-10); tighter tolerances only make
# the line search stall on rounding noise.
_GTOL = 1e-8
_SAMPLE = 10_000  # customers in the first, rough fit on large data (see _minimize)


# --------------------------------------------------------------------------------------------
# Input checks and compression
# --------------------------------------------------------------------------------------------


Objective = Callable[[FloatArray], tuple[float, FloatArray]]


def _bfgs(
    objective: Objective, start: FloatArray, hess_inv: FloatArray | None, gtol: float
) -> optimize.OptimizeResult:
    def clipped(log_params: FloatArray) -> tuple[float, FloatArray]:
        inside = np.clip(log_params, *_LOG_BOUNDS)
        value, gradient = objective(inside)
        return value, np.where(inside == log_params, gradient, 0.0)

    options = {"maxiter": 2000, "gtol": gtol}
    if hess_inv is not None:
        options["hess_inv0"] = hess_inv
    return optimize.minimize(clipped, start, jac=True, method="BFGS", options=options)


def _minimize(
    objective: Objective, start: FloatArray, sample_objective: Objective | None = None
) -> tuple[FloatArray, bool]:
    """Minimise over log-parameters within _LOG_BOUNDS; the minimum and whether the search
    succeeded.

    BFGS rather than L-BFGS-B where it can: SciPy's L-BFGS-B calls OpenBLAS, whose worker
    threads cost milliseconds per iteration on a busy machine, several times the objective
    itself on a million customers. With ``sample_objective`` (the same model on a sample of
    the customers, see :func:`_sample`) the search on all of them starts from the sample's
    optimum and curvature: a handful of evaluations instead of 20-30. If BFGS fails or ends
    near a bound (the likelihood rising towards a limit of the model), L-BFGS-B, which
    handles bounds properly, searches again from ``start``.
    """
    hess_inv, first_start = None, start
    if sample_objective is not None:
        # only a start: a rough optimum will do, whether or not BFGS calls it converged
        first = _bfgs(sample_objective, start, None, gtol=1e-5)
        curvature = (first.hess_inv + first.hess_inv.T) / 2
        if np.all(np.isfinite(curvature)) and np.linalg.eigvalsh(curvature)[0] > 0:
            start, hess_inv = first.x, curvature
    result = _bfgs(objective, start, hess_inv, _GTOL)
    if result.success and np.all(np.abs(result.x) < _LOG_BOUNDS[1] - 1):
        return result.x, True
    result = optimize.minimize(
        objective,
        first_start,
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_BOUNDS] * start.size,
        options={"maxiter": 2000, "ftol": 1e-12, "gtol": _GTOL},
    )
    return result.x, bool(result.success)


def _sample(w: FloatArray) -> tuple[NDArray[np.bool_], FloatArray] | None:
    """Rows and weights of a random sample of about _SAMPLE customers, or None if there are
    not many more rows than that.

    Rows are drawn with probability proportional to their weight (capped at 1) and reweighted
    by its inverse, so the sample's likelihood estimates the whole one. Seeded: a fit on the
    same data gives the same result.
    """
    if w.size < 5 * _SAMPLE:
        return None
    prob = np.minimum(1.0, w * (_SAMPLE / w.sum()))
    keep = np.random.default_rng(0).random(w.size) < prob
    return keep, w[keep] / prob[keep]


def _converged(log_params: FloatArray, success: bool, log_likelihood: float) -> bool:
    """Optimiser success, a finite likelihood, and no parameter stuck at a search bound."""
    at_bound = np.any(np.abs(np.abs(log_params) - _LOG_BOUNDS[1]) < 1e-6)
    return success and bool(np.isfinite(log_likelihood)) and not at_bound


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product by einsum rather than BLAS.

    OpenBLAS spreads long dot products over threads; inside the optimiser loop, on a small
    shared machine, waking them cost more than the product (a 20,000-row fit ran ~5x slower).
    """
    return float(np.einsum("i,i->", a, b))


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask.ravel())[0])


def _rft_arrays(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate (frequency, recency, T) and broadcast them to float arrays of one shape.

    Raises:
        ValueError: non-finite, negative or non-integer frequency, recency > T, or a
            customer with no repeat purchase but a positive recency.
    """
    try:
        x, t_x, t_cal = np.broadcast_arrays(
            np.asarray(frequency, dtype=np.float64),
            np.asarray(recency, dtype=np.float64),
            np.asarray(T, dtype=np.float64),
        )
    except ValueError as exc:
        raise ValueError("frequency, recency and T must have the same length") from exc
    for name, values in (("frequency", x), ("recency", t_x), ("T", t_cal)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must contain only finite numbers")
        if np.any(values < 0):
            i = _first_bad(values < 0)
            raise ValueError(f"{name} must be >= 0 (row {i}: {values.ravel()[i]})")
    if np.any(x != np.floor(x)):
        i = _first_bad(x != np.floor(x))
        raise ValueError(
            f"frequency counts repeat purchases and must be a whole number (row {i}: "
            f"{x.ravel()[i]})"
        )
    if np.any(t_x > t_cal):
        i = _first_bad(t_x > t_cal)
        raise ValueError(
            f"recency must not exceed T (row {i}: recency={t_x.ravel()[i]}, T={t_cal.ravel()[i]})"
        )
    if np.any((x == 0) & (t_x > 0)):
        i = _first_bad((x == 0) & (t_x > 0))
        raise ValueError(
            f"recency must be 0 for a customer with frequency 0 (row {i}: recency={t_x.ravel()[i]})"
        )
    return x, t_x, t_cal


def _fit_arrays(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validated 1-D arrays for fitting, plus weights (ones when not given)."""
    shapes = {np.shape(frequency), np.shape(recency), np.shape(T)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError("frequency, recency and T must be 1-D arrays of the same length")
    x, t_x, t_cal = _rft_arrays(frequency, recency, T)
    if x.size == 0:
        raise ValueError("cannot fit a model on zero customers")
    w = _weights(weights, x.size)
    return x, t_x, t_cal, w


def _weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must be a 1-D array of length {n}, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    if w.sum() <= 0:
        raise ValueError("weights must not all be zero")
    return w


def _unique_rows(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], NDArray[np.int64]]:
    """Distinct rows of the given columns, sorted, with counts.

    The result equals ``np.unique(np.column_stack(columns), axis=0, return_counts=True)``;
    a lexsort is several times faster than that on a million rows.
    """
    order = np.lexsort(columns[::-1])
    sorted_columns = tuple(column[order] for column in columns)
    new = np.zeros(order.size, dtype=bool)
    new[:1] = True
    for column in sorted_columns:
        new[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, order.size)).astype(np.int64)
    return tuple(column[starts] for column in sorted_columns), counts


def _groups(values: NDArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """Distinct values and each row's position among them, as ``np.unique(values,
    return_inverse=True)``.

    Whole numbers in a range comparable to the row count (counts, days) are found with a
    bincount instead of a sort: several times faster on a few hundred thousand rows.
    """
    top = values.max(initial=0)
    if (
        top > 4 * values.size + 1024
        or values.min(initial=0) < 0
        or np.any(values != np.floor(values))
    ):
        distinct, index = np.unique(values, return_inverse=True)
        return distinct.astype(np.float64), index.ravel()
    codes = values.astype(np.intp)
    used = np.bincount(codes, minlength=int(top) + 1) > 0
    return np.flatnonzero(used).astype(np.float64), (np.cumsum(used) - 1)[codes]


def compress(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
    """Collapse customers to the distinct (frequency, recency, T) triples and their counts.

    Returns ``(frequency, recency, T, weights)`` ready for ``fit_bgnbd(..., weights=weights)``.
    Raises ValueError on invalid input (see :func:`fit_bgnbd`).
    """
    x, t_x, t_cal, _ = _fit_arrays(frequency, recency, T, None)
    (x, t_x, t_cal), counts = _unique_rows(x, t_x, t_cal)
    return x, t_x, t_cal, counts


def compress_monetary(
    frequency: ArrayLike, monetary: ArrayLike
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """Collapse customers to distinct (frequency, monetary) pairs and their counts."""
    x, m = _gg_arrays(frequency, monetary)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("frequency and monetary must be non-empty 1-D arrays")
    (x, m), counts = _unique_rows(x, m)
    return x, m, counts


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; ``alpha`` is in the time unit of recency/T."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float
    converged: bool


@dataclass(frozen=True)
class _BgNbdData:
    """Fitting data grouped once, outside the optimiser loop.

    Of the log-likelihood only the drop-out term depends on the whole triple, and it is zero
    for customers without a repeat purchase; the other terms are sums over the distinct
    frequencies and over the distinct T (order histories in days have few of each).
    """

    total: float
    xs: FloatArray  # distinct frequencies
    wx: FloatArray  # total weight per distinct frequency
    ts: FloatArray  # distinct T
    wt: FloatArray  # total weight per distinct T
    wxt: FloatArray  # total weight x frequency per distinct T
    txs: FloatArray  # distinct recency
    # rows with a repeat purchase
    x: FloatArray
    w: FloatArray
    x_idx: NDArray[np.intp]  # row -> position in xs
    t_idx: NDArray[np.intp]  # row -> position in ts
    tx_idx: NDArray[np.intp]  # row -> position in txs

    @classmethod
    def of(cls, x: FloatArray, t_x: FloatArray, t_cal: FloatArray, w: FloatArray) -> _BgNbdData:
        xs, x_idx = _groups(x)
        ts, t_idx = _groups(t_cal)
        wx = np.bincount(x_idx, weights=w, minlength=xs.size)
        wt = np.bincount(t_idx, weights=w, minlength=ts.size)
        wxt = np.bincount(t_idx, weights=w * x, minlength=ts.size)
        repeat = (x > 0) & (w > 0)
        txs, tx_idx = _groups(t_x[repeat])
        return cls(
            float(w.sum()),
            xs,
            wx,
            ts,
            wt,
            wxt,
            txs,
            x[repeat],
            w[repeat],
            x_idx[repeat],
            t_idx[repeat],
            tx_idx,
        )


def _bgnbd_terms(params: FloatArray, data: _BgNbdData, with_grad: bool) -> tuple[float, FloatArray]:
    """Weighted BG/NBD log-likelihood and its gradient w.r.t. (r, alpha, a, b).

    Paper eq. (6) in log form: ``log L = A1 + A2 + A3 + softplus(D)`` with
    ``A1 = lnΓ(r+x) - lnΓ(r) + r ln α``, ``A2 = lnΓ(a+b) + lnΓ(b+x) - lnΓ(b) - lnΓ(a+b+x)``,
    ``A3 = -(r+x) ln(α+T)`` and ``D = ln a - ln(b+x-1) + (r+x) (ln(α+T) - ln(α+t_x))`` for
    x > 0 (D = -inf, softplus 0, for x = 0). ``expit(D)`` is the share of the second term
    (the customer dropped out after the last purchase), reused in the gradient.
    """
    r, alpha, a, b = params
    xs, wx, wt = data.xs, data.wx, data.wt
    safe_xs = np.maximum(xs, 1.0)  # the x = 0 entry is not used by the drop-out term

    a12 = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
    a12 += special.gammaln(a + b) + special.gammaln(b + xs) - special.gammaln(b)
    a12 -= special.gammaln(a + b + xs)
    log_at = np.log(alpha + data.ts)
    w_at = r * wt + data.wxt  # total weight x (r + x) per distinct T
    log_ratio = log_at[data.t_idx]
    log_atx = np.log(alpha + data.txs)
    log_ratio -= log_atx[data.tx_idx]
    rx = data.x + r
    d = rx * log_ratio
    d += (np.log(a) - np.log(b + safe_xs - 1))[data.x_idx]
    # softplus(d) = max(d, 0) + log(1 + e^-|d|): np.log and np.exp are vectorised, np.log1p,
    # np.logaddexp and special.expit several times slower; 1 + e is exact to 1e-16.
    e = np.exp(-np.abs(d))
    one_e = 1.0 + e
    ll = _dot(wx, a12) - _dot(w_at, log_at)
    ll += _dot(data.w, np.maximum(d, 0.0)) + _dot(data.w, np.log(one_e))
    if not with_grad:
        return ll, np.empty(0)

    w4 = np.where(d >= 0, data.w, data.w * e)  # weight x expit(d): the drop-out share
    w4 /= one_e
    w4rx = w4 * rx
    inv_at, inv_atx = 1.0 / (alpha + data.ts), 1.0 / (alpha + data.txs)
    ab = special.digamma(a + b) - special.digamma(a + b + xs)
    w4x = np.bincount(data.x_idx, weights=w4, minlength=xs.size)
    d_r = _dot(wx, special.digamma(r + xs) - special.digamma(r) + np.log(alpha))
    d_r += _dot(w4, log_ratio) - _dot(wt, log_at)
    d_alpha = data.total * r / alpha - _dot(w_at, inv_at)
    d_alpha += _dot(np.bincount(data.t_idx, weights=w4rx, minlength=data.ts.size), inv_at)
    d_alpha -= _dot(np.bincount(data.tx_idx, weights=w4rx, minlength=data.txs.size), inv_atx)
    d_a = _dot(wx, ab) + w4x.sum() / a
    d_b = _dot(wx, ab + special.digamma(b + xs) - special.digamma(b))
    d_b -= _dot(w4x, 1.0 / (b + safe_xs - 1))
    return float(ll), np.array([d_r, d_alpha, d_a, d_b])


def bgnbd_log_likelihood(
    params: BgNbdParams | tuple[float, float, float, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
) -> float:
    """Total (weighted) BG/NBD log-likelihood of the data at the given (r, alpha, a, b)."""
    x, t_x, t_cal, w = _fit_arrays(frequency, recency, T, weights)
    values = _param_vector(params)
    return _bgnbd_terms(values, _BgNbdData.of(x, t_x, t_cal, w), with_grad=False)[0]


def _param_vector(params: BgNbdParams | tuple[float, float, float, float]) -> FloatArray:
    if isinstance(params, BgNbdParams):
        return np.array([params.r, params.alpha, params.a, params.b])
    values = np.asarray(params, dtype=np.float64)
    if values.shape != (4,) or np.any(values <= 0):
        raise ValueError("BG/NBD parameters must be four positive numbers (r, alpha, a, b)")
    return values


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
) -> BgNbdParams:
    """Fit the BG/NBD model by maximum likelihood.

    ``weights`` counts how many customers share each row (see :func:`compress`). The objective
    is the weighted mean negative log-likelihood plus ``penalizer * sum(params**2)`` (as in
    lifetimes); ``log_likelihood`` in the result is the unpenalised total.

    Raises:
        ValueError: empty or invalid input (see the module docstring), or no customer with a
            repeat purchase (the model is not identified).
    """
    x, t_x, t_cal, w = _fit_arrays(frequency, recency, T, weights)
    if penalizer < 0:
        raise ValueError("penalizer must be >= 0")
    if not np.any((x > 0) & (w > 0)):
        raise ValueError("BG/NBD needs at least one customer with a repeat purchase")
    total = w.sum()
    data = _BgNbdData.of(x, t_x, t_cal, w)

    def objective_on(data: _BgNbdData) -> Objective:
        def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(log_params)
            ll, grad = _bgnbd_terms(params, data, with_grad=True)
            value = -ll / data.total + penalizer * float(params @ params)
            # chain rule for log-params
            gradient = (-grad / data.total + 2 * penalizer * params) * params
            return value, gradient

        return objective

    sample_objective = None
    if sample := _sample(w):
        rows, weights = sample
        sample_data = _BgNbdData.of(x[rows], t_x[rows], t_cal[rows], weights)
        if sample_data.x.size:  # the sample has repeat buyers to fit on
            sample_objective = objective_on(sample_data)
    # Start from r = 1 with the Poisson rate matched to the data (mean x / mean T), a = b = 1.
    rate = _dot(w, x) / max(_dot(w, t_cal), 1e-12)
    alpha0 = float(np.clip(1.0 / max(rate, 1e-12), 1e-3, 1e5))
    start = np.log([1.0, alpha0, 1.0, 1.0])
    log_params, success = _minimize(objective_on(data), start, sample_objective)
    r, alpha, a, b = np.exp(log_params)
    ll = _bgnbd_terms(np.exp(log_params), data, with_grad=False)[0]
    return BgNbdParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=ll,
        n_customers=float(total),
        converged=_converged(log_params, success, ll),
    )


def _log_alive_odds(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, t_cal: FloatArray
) -> FloatArray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x); -inf where x == 0."""
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    odds = (
        np.log(a) - np.log(b + safe_x - 1) + (r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_x))
    )
    return np.where(repeat, odds, -np.inf)


def probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(customer still active at T | x, t_x, T); exactly 1 for customers with frequency 0."""
    x, t_x, t_cal = _rft_arrays(frequency, recency, T)
    odds = _log_alive_odds(params.r, params.alpha, params.a, params.b, x, t_x, t_cal)
    return special.expit(-odds)


def _alive_purchases(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, t_cal: FloatArray
) -> FloatArray:
    """Expected purchases in (T, T+t] for a customer known to be alive at T.

    Paper eq. (10) numerator, ``(a+b+x-1)/(a-1) * [1 - ((α+T)/(α+T+t))^(r+x)
    2F1(r+x, b+x; a+b+x-1; z)]``, with z = t/(α+T+t). We evaluate it after Euler's
    transformation ``2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)``, which gives
    ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``: the first two 2F1 arguments no longer grow
    with x, so the series stays well-conditioned for heavy buyers.
    """
    log_1mz = np.log(alpha + t_cal) - np.log(alpha + t_cal + t)
    z = -np.expm1(log_1mz)
    hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    return (a + b + x - 1) / (a - 1) * (1 - np.exp((a - 1) * log_1mz) * hyp)


def expected_purchases(
    params: BgNbdParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next ``t`` time units.

    ``t`` is in the unit of recency/T (``90 / time_unit_days`` for the next 90 days); it may be
    a scalar or broadcast against the customers. Undefined at a == 1 exactly (paper eq. 10).
    """
    x, t_x, t_cal = _rft_arrays(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ValueError("t must be finite and >= 0")
    p = params
    alive = special.expit(-_log_alive_odds(p.r, p.alpha, p.a, p.b, x, t_x, t_cal))
    if x.ndim != 1 or horizon.shape[-1:] not in ((), (1,)):
        return alive * _alive_purchases(p.r, p.alpha, p.a, p.b, horizon, x, t_cal)
    # The same horizon for everyone: hyp2f1, most of the cost, once per distinct (x, T).
    xs, x_idx = _groups(x)
    ts, t_idx = _groups(t_cal)
    pairs, pair_idx = _groups(x_idx * ts.size + t_idx)
    pairs = pairs.astype(np.intp)
    per_pair = _alive_purchases(
        p.r, p.alpha, p.a, p.b, horizon, xs[pairs // ts.size], ts[pairs % ts.size]
    )
    return alive * per_pair[..., pair_idx]


def expected_purchases_new(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases within ``t`` of a new customer's first purchase.

    Paper eq. (9); used for the cumulative calibration/holdout chart (sum over a cohort's
    first-purchase dates).
    """
    horizon = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ValueError("t must be finite and >= 0")
    p = params
    return _alive_purchases(p.r, p.alpha, p.a, p.b, horizon, np.zeros(()), np.zeros(()))


def simulate_bgnbd(
    rng: np.random.Generator,
    T: ArrayLike,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
) -> tuple[FloatArray, FloatArray]:
    """Draw (frequency, recency) for customers observed for ``T`` from the BG/NBD process.

    Each customer gets a purchase rate λ ~ Gamma(r, scale 1/α) and a drop-out probability
    p ~ Beta(a, b); repeat purchases arrive as a Poisson process with rate λ and after each
    one the customer leaves with probability p. Vectorised: with N ~ Poisson(λT) arrivals in
    (0, T] and J ~ Geometric(p) purchases before leaving, x = min(N, J) and, the arrival times
    being sorted uniforms, t_x = T · Beta(x, N - x + 1). For tests and benchmarks.
    """
    t_cal = np.asarray(T, dtype=np.float64)
    n = t_cal.shape
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = np.clip(rng.beta(a, b, n), 1e-12, 1.0)
    arrivals = rng.poisson(lam * t_cal)
    x = np.minimum(arrivals, rng.geometric(drop))
    repeat = x > 0
    last = rng.beta(np.where(repeat, x, 1), np.where(repeat, arrivals - x + 1, 1))
    return x.astype(np.float64), np.where(repeat, t_cal * last, 0.0)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (``v`` is the paper's γ, in the currency unit)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: float
    converged: bool


def _gg_arrays(frequency: ArrayLike, monetary: ArrayLike) -> tuple[FloatArray, FloatArray]:
    try:
        x, m = np.broadcast_arrays(
            np.asarray(frequency, dtype=np.float64), np.asarray(monetary, dtype=np.float64)
        )
    except ValueError as exc:
        raise ValueError("frequency and monetary must have the same length") from exc
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise ValueError("frequency and monetary must contain only finite numbers")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be a whole number >= 0")
    if np.any((x > 0) & (m <= 0)):
        i = _first_bad((x > 0) & (m <= 0))
        raise ValueError(
            f"monetary must be > 0 for customers with repeat purchases (row {i}: "
            f"{m.ravel()[i]}); leave out zero-value orders or those customers"
        )
    return x, m


@dataclass(frozen=True)
class _GgData:
    """Gamma-Gamma fitting data with the per-frequency grouping and constant sums."""

    x: FloatArray
    xm: FloatArray  # total spend x * m
    w: FloatArray
    xs: FloatArray  # distinct frequencies (all > 0)
    wx: FloatArray  # total weight per distinct frequency
    sum_w_log_m: float
    sum_wx_log_m: float
    total: float

    @classmethod
    def of(cls, x: FloatArray, m: FloatArray, w: FloatArray) -> _GgData:
        xs, x_idx = _groups(x)
        wx = np.bincount(x_idx, weights=w, minlength=xs.size)
        log_m = np.log(m)
        return cls(x, x * m, w, xs, wx, _dot(w, log_m), _dot(w * x, log_m), float(w.sum()))


def _gg_terms(params: FloatArray, data: _GgData) -> tuple[float, FloatArray]:
    """Weighted Gamma-Gamma log-likelihood of mean spends and its gradient w.r.t. (p, q, v).

    ``log f = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(xm+v)``
    (Fader & Hardie 2013). Everything but the last term depends on x alone or is constant, so
    only ``ln(xm+v)`` is evaluated per row.
    """
    p, q, v = params
    xs, wx, w, x = data.xs, data.wx, data.w, data.x
    pxs = p * xs
    log_xm_v = np.log(data.xm + v)
    per_x = (
        special.gammaln(pxs + q)
        - special.gammaln(pxs)
        - special.gammaln(q)
        + q * np.log(v)
        + pxs * np.log(xs)
    )
    w_log_xm_v = w * log_xm_v
    ll = _dot(wx, per_x) + p * data.sum_wx_log_m - data.sum_w_log_m
    ll -= p * _dot(x, w_log_xm_v) + q * w_log_xm_v.sum()
    psi_pxq = special.digamma(pxs + q)
    d_p = _dot(wx, xs * (psi_pxq - special.digamma(pxs) + np.log(xs)))
    d_p += data.sum_wx_log_m - _dot(x, w_log_xm_v)
    d_q = _dot(wx, psi_pxq - special.digamma(q) + np.log(v)) - w_log_xm_v.sum()
    d_v = wx.sum() * q / v - _dot(w, (p * x + q) / (data.xm + v))
    return float(ll), np.array([d_p, d_q, d_v])


def fit_gamma_gamma(
    frequency: ArrayLike, monetary: ArrayLike, weights: ArrayLike | None = None
) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model on the customers with frequency > 0.

    ``monetary`` is each customer's average repeat-purchase value; rows with frequency 0 are
    ignored (their monetary value is not used). The model assumes spend is independent of
    purchase frequency: check their correlation before relying on it.

    Raises:
        ValueError: invalid input, non-positive monetary for a repeat customer, or no repeat
            customer at all.
    """
    if np.ndim(frequency) != 1 or np.shape(frequency) != np.shape(monetary):
        raise ValueError("frequency and monetary must be 1-D arrays of the same length")
    x, m = _gg_arrays(frequency, monetary)
    w = _weights(weights, x.size) if x.size else np.ones(0)
    used = (x > 0) & (w > 0)
    if not np.any(used):
        raise ValueError("Gamma-Gamma needs at least one customer with frequency > 0")
    x, m, w = x[used], m[used], w[used]
    total = w.sum()
    data = _GgData.of(x, m, w)

    def objective_on(data: _GgData) -> Objective:
        def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(log_params)
            ll, grad = _gg_terms(params, data)
            return -ll / data.total, -grad / data.total * params

        return objective

    sample_objective = None
    if sample := _sample(w):
        rows, weights = sample
        sample_objective = objective_on(_GgData.of(x[rows], m[rows], weights))
    start = np.log([1.0, 2.0, _dot(w, m) / total])  # prior mean p·v/(q-1) = observed mean
    log_params, success = _minimize(objective_on(data), start, sample_objective)
    p, q, v = np.exp(log_params)
    ll = _gg_terms(np.exp(log_params), data)[0]
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=ll,
        n_customers=float(total),
        converged=_converged(log_params, success, ll),
    )


def expected_average_value(
    params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """E[M | x, m̄]: expected value of a customer's future purchases.

    ``p (v + x m̄) / (p x + q - 1)`` – a weighted mean of the population mean ``p v / (q-1)``
    and the customer's own average; customers with frequency 0 get the population mean.

    Raises:
        ValueError: q <= 1 (the population mean is infinite) or invalid input.
    """
    if params.q <= 1:
        raise ValueError(f"Gamma-Gamma q must be > 1 for a finite expected value, got {params.q}")
    x, m = _gg_arrays(frequency, monetary)
    m = np.where(x > 0, m, 0.0)
    return params.p * (params.v + x * m) / (params.p * x + params.q - 1)


# --------------------------------------------------------------------------------------------
# Customer lifetime value and per-customer scores
# --------------------------------------------------------------------------------------------


def _check_time_unit(time_unit_days: float) -> None:
    if not (np.isfinite(time_unit_days) and time_unit_days > 0):
        raise ValueError("time_unit_days must be a positive number (1 for days, 7 for weeks)")


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    *,
    time_unit_days: float,
    months: int = 12,
    discount_rate_monthly: float = 0.01,
) -> FloatArray:
    """Discounted expected revenue over the next ``months`` months.

    ``sum_{k=1..months} E[M] * (E[Y(k·L)] - E[Y((k-1)·L)]) / (1 + d)^k`` with L one month
    (365.25/12 days) in the model's time unit, as lifetimes' ``customer_lifetime_value``
    (which instead uses 30 days or 4.345 weeks a month).

    Args:
        time_unit_days: length of the unit of recency/T in days (1 = days, 7 = weeks).
    """
    _check_time_unit(time_unit_days)
    if months < 1:
        raise ValueError("months must be >= 1")
    if not discount_rate_monthly > -1:
        raise ValueError("discount_rate_monthly must be > -1")
    value = expected_average_value(gamma_gamma, frequency, monetary)
    month = DAYS_PER_MONTH / time_unit_days
    steps = np.arange(months + 1, dtype=np.float64) * month
    shape = (months + 1,) + (1,) * np.ndim(value)
    cumulative = expected_purchases(bgnbd, steps.reshape(shape), frequency, recency, T)
    discount = (1 + discount_rate_monthly) ** -np.arange(1, months + 1, dtype=np.float64)
    per_month = np.diff(cumulative, axis=0)
    return value * np.tensordot(discount, per_month, axes=(0, 0))


@dataclass(frozen=True)
class CustomerScores:
    """Per-customer predictions, aligned with the input arrays."""

    purchases_90d: FloatArray
    purchases_365d: FloatArray
    probability_alive: FloatArray
    expected_value: FloatArray  # expected value of one future purchase
    lifetime_value: FloatArray  # discounted, over ``months``


def score_customers(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    *,
    time_unit_days: float,
    months: int = 12,
    discount_rate_monthly: float = 0.01,
) -> CustomerScores:
    """Everything the customer page shows, for many customers at once."""
    _check_time_unit(time_unit_days)
    return CustomerScores(
        purchases_90d=expected_purchases(bgnbd, 90 / time_unit_days, frequency, recency, T),
        purchases_365d=expected_purchases(bgnbd, 365 / time_unit_days, frequency, recency, T),
        probability_alive=probability_alive(bgnbd, frequency, recency, T),
        expected_value=expected_average_value(gamma_gamma, frequency, monetary),
        lifetime_value=customer_lifetime_value(
            bgnbd,
            gamma_gamma,
            frequency,
            recency,
            T,
            monetary,
            time_unit_days=time_unit_days,
            months=months,
            discount_rate_monthly=discount_rate_monthly,
        ),
    )


# --------------------------------------------------------------------------------------------
# Calibration / holdout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRow:
    """One bar group of the calibration/holdout chart."""

    frequency: int  # calibration-period repeat purchases; the last row is "this many or more"
    customers: int
    actual: float  # mean holdout repeat purchases
    predicted: float  # mean E[Y(holdout) | calibration data]
    open_ended: bool


def calibration_holdout(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_purchases: ArrayLike,
    holdout_duration: ArrayLike,
    *,
    max_frequency: int = 7,
) -> list[CalibrationRow]:
    """Mean actual vs predicted holdout purchases by calibration frequency 0..max_frequency+.

    ``params`` must be fitted on the calibration-period summaries only; ``holdout_duration``
    (scalar or per customer) is in the same unit as recency/T. Buckets without customers are
    left out. This is Figure 4 of Fader, Hardie & Lee (2005).
    """
    x, t_x, t_cal = _rft_arrays(frequency, recency, T)
    actual = np.asarray(holdout_purchases, dtype=np.float64)
    if actual.shape != x.shape or x.ndim != 1:
        raise ValueError("holdout_purchases must be a 1-D array with one value per customer")
    if not np.all(np.isfinite(actual)) or np.any(actual < 0):
        raise ValueError("holdout_purchases must be finite and >= 0")
    if max_frequency < 0:
        raise ValueError("max_frequency must be >= 0")
    predicted = expected_purchases(params, holdout_duration, x, t_x, t_cal)
    bucket = np.minimum(x, max_frequency).astype(np.int64)
    counts = np.bincount(bucket, minlength=max_frequency + 1)
    actual_sum = np.bincount(bucket, weights=actual, minlength=max_frequency + 1)
    predicted_sum = np.bincount(
        bucket, weights=np.broadcast_to(predicted, x.shape), minlength=max_frequency + 1
    )
    return [
        CalibrationRow(
            frequency=k,
            customers=int(counts[k]),
            actual=float(actual_sum[k] / counts[k]),
            predicted=float(predicted_sum[k] / counts[k]),
            open_ended=k == max_frequency,
        )
        for k in range(max_frequency + 1)
        if counts[k] > 0
    ]
