"""BG/NBD and Gamma-Gamma: published CDNOW results, independent values, properties, errors.

Published references:
* Fader, Hardie & Lee (2005a), "'Counting your customers' the easy way", Marketing Science:
  BG/NBD on CDNOW r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4; and the
  worked example E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 (also a check in lifetimes'
  test suite against Hardie's spreadsheet).
* Hardie's BG/NBD spreadsheet, E[X(t)] for t = 0.1429 … 78 weeks (quoted in lifetimes'
  test suite, test_expectation_returns_same_value_Hardie_excel_sheet).
* Fader, Hardie & Lee (2005b) / Fader & Hardie (2013) note 025: Gamma-Gamma on the 946 CDNOW
  repeat buyers p = 6.25, q = 3.74, gamma = 15.44, and the spreadsheet's E(M) for the first
  ten customers (quoted in lifetimes' test suite).
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special

from siyu.segments import clv

DATA = Path(__file__).parent / "data"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def _params(**values: float) -> clv.BgNbdParams:
    return clv.BgNbdParams(**values, log_likelihood=0.0, n_customers=0.0, converged=True)


def _gg(**values: float) -> clv.GammaGammaParams:
    return clv.GammaGammaParams(**values, log_likelihood=0.0, n_customers=0.0, converged=True)


PAPER = _params(**PUBLISHED_BGNBD)
PAPER_GG = _gg(**PUBLISHED_GG)


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    summary = np.loadtxt(DATA / "cdnow_summary.csv", delimiter=",", skiprows=1)
    holdout = np.loadtxt(DATA / "cdnow_holdout.csv", delimiter=",", skiprows=1)
    assert summary.shape == (2357, 5)
    assert np.array_equal(summary[:, 0], holdout[:, 0])
    return {
        "x": summary[:, 1],
        "t_x": summary[:, 2],
        "T": summary[:, 3],
        "m": summary[:, 4],
        "x_star": holdout[:, 1],
    }


@pytest.fixture(scope="module")
def bgnbd(cdnow) -> clv.BgNbdParams:
    return clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def gamma_gamma(cdnow) -> clv.GammaGammaParams:
    return clv.fit_gamma_gamma(cdnow["x"], cdnow["m"])


# --- BG/NBD against the paper -----------------------------------------------------------------


def test_bgnbd_fit_reproduces_published_cdnow_estimates(bgnbd):
    assert bgnbd.converged
    assert bgnbd.n_customers == 2357
    for name, published in PUBLISHED_BGNBD.items():
        # published to 3 decimals; we land within 0.2% of each
        assert getattr(bgnbd, name) == pytest.approx(published, abs=1e-3), name
    assert bgnbd.log_likelihood == pytest.approx(PUBLISHED_LL, abs=0.1)


def test_log_likelihood_at_published_parameters_matches_paper(cdnow):
    ll = clv.bgnbd_log_likelihood(
        tuple(PUBLISHED_BGNBD.values()), cdnow["x"], cdnow["t_x"], cdnow["T"]
    )
    assert ll == pytest.approx(PUBLISHED_LL, abs=0.1)


def test_conditional_expectation_matches_paper_example(bgnbd):
    for params in (bgnbd, PAPER):
        expected = clv.expected_purchases(params, 39, 2, 30.43, 38.86)
        assert expected == pytest.approx(1.226, abs=1e-3)


def test_unconditional_expectation_matches_hardie_spreadsheet(bgnbd):
    weeks = [0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00]
    sheet = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    np.testing.assert_allclose(clv.expected_purchases_new(bgnbd, weeks), sheet, atol=1e-3)


# --- BG/NBD against an independent implementation ---------------------------------------------

# Computed once with lifetimes 0.11.3 (MIT; BetaGeoFitter with params_ set to the published
# CDNOW values), which evaluates paper eq. (10) directly rather than in Euler-transformed form.
LIFETIMES_CASES = [
    # x, t_x, T, P(alive), E[Y(39)]
    (0, 0.0, 38.86, 1.0, 0.19509805201125396),
    (1, 1.71, 38.86, 0.2121009853773791, 0.20318698707975183),
    (2, 30.43, 38.86, 0.726578570080673, 1.226028174767135),
    (6, 30.43, 38.86, 0.7077005228074027, 3.1879989220678966),
    (10, 35.0, 38.0, 0.871739080124428, 6.447840201929003),
    (25, 30.0, 39.0, 0.08642126834533789, 1.5181851181142663),
    (50, 38.0, 39.0, 0.9526300931829877, 33.069436713427855),
]


def test_probability_alive_and_expectation_match_lifetimes():
    x, t_x, T, alive, expected = np.array(LIFETIMES_CASES).T
    np.testing.assert_allclose(clv.probability_alive(PAPER, x, t_x, T), alive, rtol=1e-9)
    np.testing.assert_allclose(clv.expected_purchases(PAPER, 39, x, t_x, T), expected, rtol=1e-9)
    np.testing.assert_allclose(
        clv.expected_purchases_new(PAPER, [1.0, 10.0, 39.0, 78.0]),
        [0.05326789117165627, 0.4324133622344203, 1.1967231933207985, 1.8605190579427455],
        rtol=1e-9,
    )


def test_euler_transformed_expectation_equals_direct_formula():
    r, alpha, a, b = PUBLISHED_BGNBD.values()
    x = np.array([0.0, 1, 2, 5, 12, 30])
    t_x = np.array([0.0, 3, 20, 30, 35, 38])
    T, t = 39.0, np.array([[1.0], [39.0], [104.0]])
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    direct = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    direct /= 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    np.testing.assert_allclose(clv.expected_purchases(PAPER, t, x, t_x, T), direct, rtol=1e-9)


# --- BG/NBD properties --------------------------------------------------------------------------


def test_probability_alive_is_one_without_repeat_purchases():
    assert clv.probability_alive(PAPER, 0, 0, 1) == 1.0
    assert np.all(clv.probability_alive(PAPER, [0, 0], [0, 0], [5.0, 500.0]) == 1.0)


def test_probability_alive_is_a_probability_and_falls_with_silence():
    x, t_x = np.meshgrid(np.arange(1, 100, 7.0), np.arange(0, 50, 5.0))
    alive = clv.probability_alive(PAPER, x, t_x, 50.0)
    assert np.all((alive >= 0) & (alive <= 1))
    later = clv.probability_alive(PAPER, x, t_x, 80.0)
    assert np.all(later <= alive)


def test_expected_purchases_new_is_the_conditional_expectation_of_a_newcomer():
    t = np.array([0.0, 0.5, 10.0, 52.0, 520.0])
    np.testing.assert_allclose(
        clv.expected_purchases_new(PAPER, t), clv.expected_purchases(PAPER, t, 0, 0, 0), rtol=1e-12
    )
    assert clv.expected_purchases_new(PAPER, 0.0) == 0.0


def test_predictions_do_not_depend_on_the_time_unit():
    days = replace(PAPER, alpha=PAPER.alpha * 7)
    x, t_x, T = np.array([0.0, 2, 7]), np.array([0.0, 30.43, 29.43]), np.array([38.86] * 3)
    np.testing.assert_allclose(
        clv.expected_purchases(days, 90, x, t_x * 7, T * 7),
        clv.expected_purchases(PAPER, 90 / 7, x, t_x, T),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        clv.probability_alive(days, x, t_x * 7, T * 7),
        clv.probability_alive(PAPER, x, t_x, T),
        rtol=1e-12,
    )


# --- compression and weights --------------------------------------------------------------------


def test_compress_matches_numpy_unique_rows(cdnow):
    f, r, t, w = clv.compress(cdnow["x"], cdnow["t_x"], cdnow["T"])
    rows, counts = np.unique(
        np.column_stack((cdnow["x"], cdnow["t_x"], cdnow["T"])), axis=0, return_counts=True
    )
    np.testing.assert_array_equal(np.column_stack((f, r, t)), rows)
    np.testing.assert_array_equal(w, counts)
    assert w.sum() == 2357 and f.size < 2357


def test_fit_on_compressed_triples_equals_fit_on_rows(cdnow, bgnbd):
    f, r, t, w = clv.compress(cdnow["x"], cdnow["t_x"], cdnow["T"])
    params = (0.3, 5.0, 0.9, 2.0)
    assert clv.bgnbd_log_likelihood(params, f, r, t, weights=w) == pytest.approx(
        clv.bgnbd_log_likelihood(params, cdnow["x"], cdnow["t_x"], cdnow["T"]), rel=1e-12
    )
    weighted = clv.fit_bgnbd(f, r, t, weights=w)
    assert weighted.n_customers == 2357
    assert weighted.log_likelihood == pytest.approx(bgnbd.log_likelihood, abs=1e-6)
    for name in PUBLISHED_BGNBD:
        assert getattr(weighted, name) == pytest.approx(getattr(bgnbd, name), rel=1e-4), name


def test_bgnbd_gradient_matches_finite_differences(cdnow):
    f, r, t, w = clv.compress(cdnow["x"], cdnow["t_x"], cdnow["T"])
    data = clv._BgNbdData.of(f, r, t, w.astype(float))
    for point in ([0.3, 5.0, 0.9, 2.0], [0.243, 4.414, 0.793, 2.426], [2.0, 0.5, 3.0, 0.6]):
        error = optimize.check_grad(
            lambda p: clv._bgnbd_terms(p, data, True)[0],
            lambda p: clv._bgnbd_terms(p, data, True)[1],
            np.array(point),
        )
        assert error < 1e-3 * np.linalg.norm(clv._bgnbd_terms(np.array(point), data, True)[1])


def test_penalizer_shrinks_parameters(cdnow, bgnbd):
    penalised = clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], penalizer=0.1)
    assert penalised.log_likelihood < bgnbd.log_likelihood
    assert penalised.alpha < bgnbd.alpha and penalised.b < bgnbd.b


def test_fit_recovers_parameters_of_synthetic_customers():
    true = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    rng = np.random.default_rng(2026)
    days = rng.integers(26 * 7, 52 * 7 + 1, 50_000).astype(float)
    x, t_x = clv.simulate_bgnbd(rng, days / 7, **true)
    f, r, t, w = clv.compress(x, np.floor(t_x * 7) / 7, days / 7)  # whole days, in weeks
    params = clv.fit_bgnbd(f, r, t, weights=w)
    assert params.converged
    # sampling error at n = 50,000: ~1-2% for r and alpha, ~3-6% for a and b
    assert params.r == pytest.approx(true["r"], rel=0.05)
    assert params.alpha == pytest.approx(true["alpha"], rel=0.05)
    assert params.a == pytest.approx(true["a"], rel=0.15)
    assert params.b == pytest.approx(true["b"], rel=0.15)


# --- Gamma-Gamma --------------------------------------------------------------------------------


def test_gamma_gamma_reproduces_published_cdnow_estimates(gamma_gamma):
    assert gamma_gamma.converged
    assert gamma_gamma.n_customers == 946
    for name, published in PUBLISHED_GG.items():
        assert getattr(gamma_gamma, name) == pytest.approx(published, rel=0.01), name


def test_expected_average_value_matches_hardie_spreadsheet(cdnow, gamma_gamma):
    sheet = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    value = clv.expected_average_value(gamma_gamma, cdnow["x"][:10], cdnow["m"][:10])
    np.testing.assert_allclose(value, sheet, atol=0.02)  # sheet quotes 2 decimals


def test_expected_average_value_of_a_newcomer_is_the_population_mean():
    mean = PAPER_GG.p * PAPER_GG.v / (PAPER_GG.q - 1)
    assert clv.expected_average_value(PAPER_GG, 0, 0) == pytest.approx(mean)
    heavy = clv.expected_average_value(PAPER_GG, 1000, 80.0)
    assert heavy == pytest.approx(80.0, rel=0.01)


def test_gamma_gamma_compressed_and_gradient(cdnow, gamma_gamma):
    repeat = cdnow["x"] > 0
    x, m, w = clv.compress_monetary(cdnow["x"][repeat], cdnow["m"][repeat])
    weighted = clv.fit_gamma_gamma(x, m, weights=w)
    assert weighted.log_likelihood == pytest.approx(gamma_gamma.log_likelihood, abs=1e-6)
    assert weighted.p == pytest.approx(gamma_gamma.p, rel=1e-4)
    data = clv._GgData.of(x, m, w.astype(float))
    point = np.array([6.0, 3.5, 15.0])
    error = optimize.check_grad(
        lambda p: clv._gg_terms(p, data)[0], lambda p: clv._gg_terms(p, data)[1], point
    )
    assert error < 1e-3 * np.linalg.norm(clv._gg_terms(point, data)[1])


def test_gamma_gamma_recovers_parameters_of_synthetic_spend():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 10, 20_000).astype(float)
    rate = rng.gamma(3.5, 1 / 15.0, x.size)  # per-customer scale ν ~ Gamma(q, rate v)
    m = rng.gamma(6.0 * x, 1 / (rate * x))  # mean of x spends ~ Gamma(p x, rate ν x)
    params = clv.fit_gamma_gamma(x, m)
    assert params.p == pytest.approx(6.0, rel=0.15)
    assert params.q == pytest.approx(3.5, rel=0.15)
    assert params.v == pytest.approx(15.0, rel=0.15)


# --- lifetime value, scores, calibration ---------------------------------------------------------


def test_customer_lifetime_value_matches_lifetimes(cdnow):
    # lifetimes 0.11.3 customer_lifetime_value(time=12, discount_rate=0.01, freq="W") at the
    # published parameters: its month is 4.345 weeks, so pass the matching time unit.
    reference = [36.28921112559952, 4.637294659747194, 8.369004358920185, 283.5327763170912]
    rows = [0, 1, 2, 5]
    value = clv.customer_lifetime_value(
        PAPER,
        PAPER_GG,
        cdnow["x"][rows],
        cdnow["t_x"][rows],
        cdnow["T"][rows],
        cdnow["m"][rows],
        time_unit_days=clv.DAYS_PER_MONTH / 4.345,
    )
    np.testing.assert_allclose(value, reference, rtol=1e-9)


def test_undiscounted_value_is_purchases_times_spend():
    clv_days = clv.customer_lifetime_value(
        replace(PAPER, alpha=PAPER.alpha * 7),
        PAPER_GG,
        [0, 2, 7],
        [0, 213.0, 206.0],
        [272.0] * 3,
        [0, 22.35, 73.74],
        time_unit_days=1,
        months=24,
        discount_rate_monthly=0.0,
    )
    purchases = clv.expected_purchases(
        PAPER, 24 * clv.DAYS_PER_MONTH / 7, [0, 2, 7], [0, 213 / 7, 206 / 7], [272 / 7] * 3
    )
    value = clv.expected_average_value(PAPER_GG, [0, 2, 7], [0, 22.35, 73.74])
    np.testing.assert_allclose(clv_days, purchases * value, rtol=1e-9)


def test_score_customers_in_days(cdnow):
    days = replace(PAPER, alpha=PAPER.alpha * 7)
    scores = clv.score_customers(
        days,
        PAPER_GG,
        cdnow["x"],
        cdnow["t_x"] * 7,
        cdnow["T"] * 7,
        cdnow["m"],
        time_unit_days=1,
    )
    assert scores.lifetime_value.shape == (2357,)
    np.testing.assert_allclose(
        scores.purchases_90d,
        clv.expected_purchases(PAPER, 90 / 7, cdnow["x"], cdnow["t_x"], cdnow["T"]),
        rtol=1e-10,
    )
    assert np.all(scores.purchases_365d > scores.purchases_90d)
    assert np.all(scores.probability_alive[cdnow["x"] == 0] == 1.0)
    assert np.all(scores.lifetime_value > 0)


def test_calibration_holdout_table_on_cdnow(cdnow, bgnbd):
    rows = clv.calibration_holdout(
        bgnbd, cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["x_star"], 39.0
    )
    assert [row.frequency for row in rows] == list(range(8))
    assert rows[-1].open_ended and not rows[0].open_ended
    assert sum(row.customers for row in rows) == 2357
    assert rows[0].customers == 1411
    bucket = np.minimum(cdnow["x"], 7)
    predicted = clv.expected_purchases(bgnbd, 39.0, cdnow["x"], cdnow["t_x"], cdnow["T"])
    for row in rows:
        chosen = bucket == row.frequency
        assert row.actual == pytest.approx(cdnow["x_star"][chosen].mean())
        assert row.predicted == pytest.approx(predicted[chosen].mean())
        # the model tracks the holdout (Fader, Hardie & Lee 2005a, Figure 4): here within 30%
        assert row.predicted == pytest.approx(row.actual, rel=0.3)
    assert np.all(np.diff([row.predicted for row in rows]) > 0)


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([], [], [], "zero customers"),
        ([1, -1], [1, 0], [2, 2], "frequency must be >= 0"),
        ([1, 2], [1, -1], [2, 2], "recency must be >= 0"),
        ([1, 2], [3, 1], [2, 2], "recency must not exceed T"),
        ([0, 2], [1, 1], [2, 2], "recency must be 0 for a customer with frequency 0"),
        ([1.5, 2], [1, 1], [2, 2], "whole number"),
        ([1, np.nan], [1, 1], [2, 2], "finite"),
        ([1, 2], [1, 1], [2, 2, 3], "1-D arrays of the same length"),
        ([[1, 2]], [[1, 1]], [[2, 2]], "1-D arrays of the same length"),
        ([0, 0], [0, 0], [2, 2], "at least one customer with a repeat purchase"),
    ],
)
def test_fit_bgnbd_rejects_bad_input(frequency, recency, T, message):
    with pytest.raises(ValueError, match=message):
        clv.fit_bgnbd(frequency, recency, T)


def test_other_bad_input_is_rejected():
    with pytest.raises(ValueError, match="weights must be a 1-D array of length 2"):
        clv.fit_bgnbd([1, 2], [1, 1], [2, 2], weights=[1])
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        clv.fit_bgnbd([1, 2], [1, 1], [2, 2], weights=[1, -1])
    with pytest.raises(ValueError, match="penalizer"):
        clv.fit_bgnbd([1, 2], [1, 1], [2, 2], penalizer=-1)
    with pytest.raises(ValueError, match="t must be finite and >= 0"):
        clv.expected_purchases(PAPER, -1, 1, 1, 2)
    with pytest.raises(ValueError, match="recency must not exceed T"):
        clv.probability_alive(PAPER, 1, 3, 2)
    with pytest.raises(ValueError, match="monetary must be > 0"):
        clv.fit_gamma_gamma([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match="at least one customer with frequency > 0"):
        clv.fit_gamma_gamma([0, 0], [0.0, 0.0])
    with pytest.raises(ValueError, match="q must be > 1"):
        clv.expected_average_value(_gg(p=1.0, q=0.9, v=1.0), 1, 10.0)
    with pytest.raises(ValueError, match="time_unit_days"):
        clv.customer_lifetime_value(PAPER, PAPER_GG, 1, 1, 2, 10.0, time_unit_days=0)
    with pytest.raises(ValueError, match="one value per customer"):
        clv.calibration_holdout(PAPER, [1, 2], [1, 1], [2, 2], [1], 1.0)


def test_large_fits_started_from_a_sample_reach_the_full_maximum(monkeypatch):
    """Above 5 × _SAMPLE rows a fit first runs on a sample; the answer must not depend on it."""
    rng = np.random.default_rng(7)
    customers = 200_000
    T = rng.integers(1, 731, customers).astype(float)
    frequency, recency = clv.simulate_bgnbd(rng, T, r=0.25, alpha=40.0, a=0.8, b=2.5)
    recency = np.minimum(np.floor(recency), T) * (frequency > 0)
    triples = clv.compress(frequency, recency, T)
    assert triples[3].size >= 5 * clv._SAMPLE  # the sampled start is taken
    assert (frequency > 0).sum() >= 5 * clv._SAMPLE  # so is the Gamma-Gamma one
    spend = np.where(frequency > 0, rng.gamma(6.0, 10.0, customers), 0.0)

    sampled = clv.fit_bgnbd(*triples[:3], weights=triples[3])
    sampled_gg = clv.fit_gamma_gamma(frequency, spend)
    monkeypatch.setattr(clv, "_SAMPLE", 10**9)
    direct = clv.fit_bgnbd(*triples[:3], weights=triples[3])
    direct_gg = clv.fit_gamma_gamma(frequency, spend)

    for name in ("r", "alpha", "a", "b"):
        assert getattr(sampled, name) == pytest.approx(getattr(direct, name), rel=1e-4)
    for name in ("p", "q", "v"):
        assert getattr(sampled_gg, name) == pytest.approx(getattr(direct_gg, name), rel=1e-4)
