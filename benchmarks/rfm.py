"""Time rfm_recompute and stages_recompute on the database of SIYU_DATABASE_URL.

Runs against whatever the database holds (seed it first with benchmarks/seed.py) and prints
each step's time and what it wrote. Run `siyu migrate` on that database first.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/rfm.py
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from siyu.commerce.models import Order  # noqa: E402
from siyu.customers.models import Customer  # noqa: E402
from siyu.segments.selectors import super_users  # noqa: E402
from siyu.segments.services import rfm_recompute, stages_recompute  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat each step this many times")
    args = parser.parse_args()

    print(f"database           {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"customers          {Customer.objects.count():>12,}")
    print(f"orders             {Order.objects.count():>12,}")
    for run in range(1, args.runs + 1):
        summary = rfm_recompute()
        print(f"rfm_recompute #{run}   {summary.seconds:>11.2f}s  ({summary.written:,} written)")
        started = time.perf_counter()
        counts = stages_recompute()
        seconds = time.perf_counter() - started
        print(f"stages_recompute #{run}{seconds:>10.2f}s  ({sum(counts.values()):,} transitions)")
    started = time.perf_counter()
    result = super_users(share=0.8)
    seconds = time.perf_counter() - started
    print(f"super_users        {seconds:>11.2f}s  ({result.customers:,} of {result.buyers:,})")
    print(
        "groups             " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.groups.items()))
    )


if __name__ == "__main__":
    main()
