"""Time BG/NBD fitting on synthetic customers compressed to distinct (frequency, recency, T).

Draws customers from the BG/NBD process with known parameters (siyu.segments.clv.
simulate_bgnbd), in days: first purchases spread uniformly over the last ``--days`` days,
recency in whole days between purchase dates as an order history gives it. Then compresses,
fits, and prints the timings, the number of distinct triples, recovered vs true parameters
and peak memory.

    .venv/bin/python benchmarks/clv.py                       # 1,000,000 customers
    .venv/bin/python benchmarks/clv.py --customers 200000 --seed 3
"""

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from siyu.segments import clv

TRUE = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}  # alpha in days: ~3 purchases a year


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=730, help="longest observation period")
    parser.add_argument("--seed", type=int, default=20261)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    T = rng.integers(1, args.days + 1, args.customers).astype(np.float64)
    frequency, recency = clv.simulate_bgnbd(rng, T, **TRUE)
    # whole days between purchase dates: the first purchase falls at a random time of its day
    recency = np.minimum(np.floor(recency + rng.random(recency.size)) * (frequency > 0), T)
    simulated = time.perf_counter() - started

    tracemalloc.start()
    started = time.perf_counter()
    f, r, t, weights = clv.compress(frequency, recency, T)
    compressed = time.perf_counter() - started
    started = time.perf_counter()
    params = clv.fit_bgnbd(f, r, t, weights=weights)
    fitted = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"customers          {args.customers:>12,}")
    print(f"repeat buyers      {int((frequency > 0).sum()):>12,}")
    print(f"distinct triples   {f.size:>12,}")
    print(f"simulate           {simulated:>11.2f}s")
    print(f"compress           {compressed:>11.2f}s")
    print(f"fit                {fitted:>11.2f}s  (converged: {params.converged})")
    print(f"log-likelihood     {params.log_likelihood:>12,.1f}")
    print("parameter        true    fitted   rel. error")
    for name, true in TRUE.items():
        value = getattr(params, name)
        print(f"  {name:<8} {true:>9.4f} {value:>9.4f} {value / true - 1:>+11.2%}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced (compress + fit) {traced_peak / 2**20:>8.1f} MiB")
    print(f"peak RSS (whole process)     {peak_rss:>8.1f} MiB")


if __name__ == "__main__":
    main()
