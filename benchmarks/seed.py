"""Time the demo seed against a database and report peak memory and row counts.

Runs `migrate`, then seeds in this process so that peak RSS (ru_maxrss) is the seed's own.
The database server's memory is not included.

    # embedded SQLite, kept out of the repository
    SIYU_VAR_DIR=/tmp/siyu-bench .venv/bin/python benchmarks/seed.py --customers 20000

    # PostgreSQL, a fresh database
    createdb -h 127.0.0.1 -U postgres siyu_bench
    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/seed.py --customers 1000000
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")


class LineProgress:
    """One line per step and every few seconds: readable in logs, unlike a live bar."""

    def begin(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = self.shown = time.perf_counter()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.shown >= 5 or self.done == self.total:
            self.shown = now
            elapsed = now - self.started
            rate = self.done / max(elapsed, 1e-9)
            done = f"{self.done:,}/{self.total:,}"
            speed = f" ({rate:,.0f}/s)" if self.total > 1 else ""
            print(f"  {self.label}: {done} in {elapsed:.1f} s{speed}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--force", action="store_true", help="append to a non-empty database")
    parser.add_argument("--no-orders", action="store_true", help="customers only, no orders")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from siyu.demo.services import demo_seed

    call_command("migrate", verbosity=0)
    database = f"{connection.vendor} {connection.settings_dict['NAME']}"
    print(f"seeding {args.customers:,} customers into {database}")
    started = time.perf_counter()
    ctx = demo_seed(
        customers=args.customers,
        seed=args.seed,
        append=args.force,
        progress=LineProgress(),
        chunk_size=args.chunk_size,
        orders=not args.no_orders,
    )
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"elapsed: {elapsed:.1f} s")
    print(f"peak RSS: {peak_mb:,.0f} MB")
    print("rows written: " + ", ".join(f"{name} {count:,}" for name, count in ctx.counts.items()))
    with connection.cursor() as cursor:
        for table in (
            "customers_customer",
            "customers_identity",
            "customers_relationship",
            "customers_mergerecord",
            "org_staff",
        ):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            print(f"  {table}: {cursor.fetchone()[0]:,}")
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            print(f"database size: {cursor.fetchone()[0]}")


if __name__ == "__main__":
    main()
