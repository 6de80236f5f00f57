"""Time segment counts on a database loaded by benchmarks/bench_data.py.

The issue's four-condition segment — a tag, an RFM score, an event in the last 30 days and no
order in the last 60 — counted through segments.dsl.segment_count as the admin (everyone) and
as a store manager (their scope): the first run, then the median of warm runs. --leaves also
times each condition alone; --explain prints the database's plan of the admin's count.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/segments.py --explain
    SIYU_VAR_DIR=/tmp/siyu-bench-sqlite .venv/bin/python benchmarks/segments.py
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from siyu.customers.models import Customer  # noqa: E402
from siyu.org.models import Staff  # noqa: E402
from siyu.org.selectors import viewer_for  # noqa: E402
from siyu.segments.dsl import segment_count  # noqa: E402
from siyu.tags.models import Tag  # noqa: E402


def four_conditions(tag_id: int) -> dict:
    return {
        "all": [
            {"tags": {"any": [tag_id]}},
            {"attr": "rfm_r", "op": "gte", "value": 3},
            {"events": {"type": "material_view", "within_days": 30}},
            {"orders": {"within_days": 60, "none": True}},
        ]
    }


def timed(definition: dict, viewer, runs: int) -> tuple[int, float, float]:
    """(count, first run in seconds, median of the `runs` warm runs after it)."""
    seconds = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        count = segment_count(definition, viewer)
        seconds.append(time.perf_counter() - started)
    return count, seconds[0], statistics.median(seconds[1:])


def explain(definition: dict, viewer) -> None:
    with CaptureQueriesContext(connection) as queries:
        segment_count(definition, viewer)
    sql = queries.captured_queries[-1]["sql"]  # psycopg and sqlite3 both show it bound
    print(f"\nSQL:\n{sql}\n")
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS)" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}")
        rows = cursor.fetchall()
    print("plan:")
    for row in rows:
        print("  " + " | ".join(str(v) for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="保湿", help="name of the tag in the segment")
    parser.add_argument("--runs", type=int, default=5, help="warm runs after the first")
    parser.add_argument("--leaves", action="store_true", help="also time each condition alone")
    parser.add_argument("--explain", action="store_true", help="print the plan of the count")
    args = parser.parse_args()

    tag = Tag.objects.filter(name=args.tag).first()
    if tag is None:
        raise SystemExit(f"no tag named {args.tag}; load the data with benchmarks/bench_data.py")
    definition = four_conditions(tag.pk)
    admin = Staff.objects.filter(role=Staff.Role.ADMIN).select_related("user").first()
    manager = Staff.objects.filter(role=Staff.Role.MANAGER).select_related("user").first()
    viewers = [("admin", viewer_for(admin.user)), ("manager", viewer_for(manager.user))]

    print(f"database  {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"customers {Customer.objects.live().count():,} live; tag {tag.name} (id {tag.pk})")
    print(f"first run, then the median of {args.runs} warm runs\n")
    print(f"{'segment':44} {'viewer':8} {'count':>9} {'first s':>8} {'median s':>9}")
    rows = [("four conditions", definition)]
    if args.leaves:
        rows += [(_label(leaf), leaf) for leaf in definition["all"]]
    for label, tree in rows:
        for name, viewer in viewers if tree is definition else viewers[:1]:
            count, first, median = timed(tree, viewer, args.runs)
            print(f"{label:44} {name:8} {count:>9,} {first:>8.3f} {median:>9.3f}", flush=True)
    if args.explain:
        explain(definition, viewers[0][1])


def _label(leaf: dict) -> str:
    ((kind, spec),) = ((k, v) for k, v in leaf.items() if k != "op" and k != "value")
    return f"  alone: {kind} {spec}" if kind != "attr" else f"  alone: {spec} >= {leaf['value']}"


if __name__ == "__main__":
    main()
