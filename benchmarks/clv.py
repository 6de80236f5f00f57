"""Time lifetime-value fitting and scoring: synthetic customers against `lifetimes`, or a database.

**Synthetic (default).** Draws customers from the BG/NBD process with known parameters
(siyu.segments.clv.simulate_bgnbd), in days: first purchases spread uniformly over the last
``--days`` days, recency in whole days between purchase dates as an order history gives it,
and each repeat buyer's average spend from the Gamma-Gamma model. Then runs what
clv_recompute runs between its query and its write — compress to distinct (frequency,
recency, T), fit BG/NBD and Gamma-Gamma, score every customer (P(alive), purchases in 90 and
365 days, value) — and, in the same run, the `lifetimes` package on the same customers
(BetaGeoFitter and GammaGammaFitter on one row per customer, its conditional predictions),
when a Python with lifetimes is given; prints both times (the fastest of ``--repeat`` runs
each: the machine may be shared), the speed ratio and the parameter agreement. lifetimes is
not a dependency; install it into a throw-away venv:

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes numpy scipy pandas
    .venv/bin/python benchmarks/clv.py --lifetimes /tmp/lt/bin/python   # 1,000,000 customers
    .venv/bin/python benchmarks/clv.py --customers 200000 --seed 3       # ours only

**Database.** ``--database`` runs clv_recompute (query, fit, score, write of every buyer) on
the database of SIYU_DATABASE_URL (run `siyu migrate` and seed it first) and prints each
step's time:

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/clv.py --database
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from siyu.segments import clv, clv_data  # noqa: E402
from siyu.segments.services import clv_recompute  # noqa: E402

TRUE = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}  # alpha in days: ~3 purchases a year
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 300.0}  # mean purchase p·v/(q−1) = ¥600

# Run by the other Python: fit and score with lifetimes, print timings and parameters as JSON.
LIFETIMES = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    warnings.simplefilter("ignore")
    data = np.load(sys.argv[1])
    x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary"]
    best = None
    for _ in range(int(sys.argv[3])):
        started = time.perf_counter()
        bg = BetaGeoFitter().fit(x, t_x, T)
        fitted_bg = time.perf_counter()
        n90 = bg.conditional_expected_number_of_purchases_up_to_time(90, x, t_x, T)
        n365 = bg.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T)
        alive = bg.conditional_probability_alive(x, t_x, T)
        scored_bg = time.perf_counter()
        repeat = x > 0
        gg = GammaGammaFitter().fit(x[repeat], m[repeat])
        fitted_gg = time.perf_counter()
        value = np.asarray(n365) * np.asarray(gg.conditional_expected_average_profit(x, m))
        done = time.perf_counter()
        seconds = {"fit BG/NBD": fitted_bg - started, "score BG/NBD": scored_bg - fitted_bg,
                   "fit Gamma-Gamma": fitted_gg - scored_bg, "score value": done - fitted_gg,
                   "total": done - started}
        if best is None or seconds["total"] < best["total"]:
            best = seconds
    np.savez(sys.argv[2], p_alive=np.asarray(alive), purchases_90=np.asarray(n90),
             purchases_365=np.asarray(n365), value_365=value)
    print(json.dumps({
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in gg.params_.items()},
        "seconds": best,
    }))
    """
)


def simulate(customers: int, days: int, seed: int) -> clv_data.Histories:
    rng = np.random.default_rng(seed)
    T = rng.integers(1, days + 1, customers).astype(np.float64)
    frequency, recency = clv.simulate_bgnbd(rng, T, **TRUE)
    # whole days between purchase dates: the first purchase falls at a random time of its day
    recency = np.minimum(np.floor(recency + rng.random(recency.size)) * (frequency > 0), T)
    # each customer's mean spend ν⁻¹·p, their average over x purchases ~ Gamma(p·x, rate ν·x)
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["v"], customers)
    repeat = frequency > 0
    shape = TRUE_GG["p"] * np.where(repeat, frequency, 1)
    monetary = np.where(repeat, rng.gamma(shape, 1 / (nu * np.maximum(frequency, 1))), 0.0)
    zeros = np.zeros(customers)
    return clv_data.Histories(
        customer_id=np.arange(1, customers + 1),
        frequency=frequency,
        recency=recency,
        T=T,
        monetary=monetary,
        cal_purchases=zeros,
        cal_recency=zeros,
        cal_T=zeros,
        holdout_purchases=zeros,
    )


def ours(
    histories: clv_data.Histories, repeat: int
) -> tuple[clv_data.Model, clv_data.Scores, dict]:
    best: dict = {}
    for _ in range(repeat):
        started = time.perf_counter()
        triples = clv_data.compress(histories.frequency, histories.recency, histories.T)
        compressed = time.perf_counter()
        model, scores = clv_data.fit_and_score(histories, triples)
        done = time.perf_counter()
        if not best or done - started < best["total"]:
            best = {
                "compress": compressed - started,
                "fit + score": done - compressed,
                "total": done - started,
                "triples": triples.weights.size,
            }
    return model, scores, best


def theirs(python: str, histories: clv_data.Histories, repeat: int) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = (Path(tmp) / name for name in ("in.npz", "out.npz", "lt.py"))
        np.savez(
            data,
            frequency=histories.frequency,
            recency=histories.recency,
            T=histories.T,
            monetary=histories.monetary,
        )
        script.write_text(LIFETIMES)
        result = subprocess.run(
            [python, str(script), str(data), str(out), str(repeat)],
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise SystemExit(f"lifetimes failed:\n{result.stderr[-2000:]}")
        with np.load(out) as scores:
            return json.loads(result.stdout), {k: scores[k] for k in scores.files}


def synthetic(args) -> None:
    histories = simulate(args.customers, args.days, args.seed)
    model, scores, seconds = ours(histories, args.repeat)
    print(f"customers          {args.customers:>12,}")
    print(f"repeat buyers      {int((histories.frequency > 0).sum()):>12,}")
    print(f"distinct triples   {seconds['triples']:>12,}")
    print(f"ours: compress     {seconds['compress']:>11.2f}s")
    print(f"ours: fit + score  {seconds['fit + score']:>11.2f}s")
    print(f"ours: total        {seconds['total']:>11.2f}s")
    bg, gg = model.bgnbd, model.gamma_gamma
    fitted = {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p, "q": gg.q, "v": gg.v}
    if not args.lifetimes:
        print("parameter        true    fitted")
        for name, true in (TRUE | TRUE_GG).items():
            print(f"  {name:<8} {true:>9.4f} {fitted[name]:>9.4f}")
    else:
        report, their_scores = theirs(args.lifetimes, histories, args.repeat)
        for step, value in report["seconds"].items():
            print(f"lifetimes: {step:<16}{value:>9.2f}s")
        ratio = report["seconds"]["total"] / seconds["total"]
        print(f"speed ratio        {ratio:>11.1f}x")
        theirs_params = report["bgnbd"] | report["gamma_gamma"]
        print("parameter        true      ours  lifetimes  rel. difference")
        worst = 0.0
        for name, true in (TRUE | TRUE_GG).items():
            diff = abs(fitted[name] / theirs_params[name] - 1)
            worst = max(worst, diff)
            print(
                f"  {name:<8} {true:>9.4f} {fitted[name]:>9.4f} {theirs_params[name]:>10.4f}"
                f"  {diff:>14.2e}"
            )
        print(f"largest parameter difference {worst:.2e} (target < 1e-3)")
        for name in ("p_alive", "purchases_90", "purchases_365", "value_365"):
            gap = np.max(np.abs(getattr(scores, name) - their_scores[name]))
            print(f"  largest |ours − lifetimes| {name:<14} {gap:.2e}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process)      {peak_rss:>8.1f} MiB")


def database(args) -> None:
    """clv_recompute on the configured database, then its steps timed one by one."""
    print(f"database           {connection.vendor} {connection.settings_dict['NAME']}")
    fit = clv_recompute(holdout_days=args.holdout_days)
    if fit.failure:
        raise SystemExit(f"the fit failed: {fit.failure}")
    counts = f"{fit.customers:,} buyers, {fit.triples:,} triples"
    print(f"clv_recompute      {fit.seconds:>11.2f}s  ({counts})")
    steps = {}
    started = time.perf_counter()
    histories = clv_data.buyer_histories(as_of=fit.as_of, holdout_days=args.holdout_days)
    steps["query"] = time.perf_counter() - started
    started = time.perf_counter()
    triples = clv_data.compress(histories.frequency, histories.recency, histories.T)
    model, scores = clv_data.fit_and_score(histories, triples)
    steps["compress, fit, score"] = time.perf_counter() - started
    started = time.perf_counter()
    clv_data.holdout_check(histories, holdout_days=args.holdout_days)
    steps["holdout check"] = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic():
        written = clv_data.predictions_write(histories.customer_id, scores)
    steps["write"] = time.perf_counter() - started
    for step, seconds in steps.items():
        print(f"  {step:<22}{seconds:>8.2f}s")
    print(f"  rows written        {written:>10,}")
    bg = model.bgnbd
    print(f"BG/NBD r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=730, help="longest observation period")
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument("--lifetimes", help="a Python that has the lifetimes package")
    parser.add_argument("--database", action="store_true", help="run on SIYU_DATABASE_URL")
    parser.add_argument("--holdout-days", type=int, default=90)
    parser.add_argument(
        "--repeat", type=int, default=3, help="time each side this many times, keep the fastest"
    )
    args = parser.parse_args()
    if args.database:
        database(args)
    else:
        synthetic(args)


if __name__ == "__main__":
    main()
