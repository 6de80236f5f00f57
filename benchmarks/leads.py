"""Time the hot leads page's score query on PostgreSQL at scale.

    createdb -h 127.0.0.1 -U postgres siyu_leads_bench
    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_leads_bench \\
        .venv/bin/python benchmarks/leads.py --customers 200000 --events 4000000

Migrates, then (only when the database has no customers yet) loads --staff staff members owning
--customers customers between them, a fifth of those also friends of a second staff member, and
--events events of eight types spread over the last 60 days. Then times `hot_leads` for one
staff member (first page and a later one; median of --runs) and prints the score query's plan.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

TYPES = [
    "material_viewed",
    "link_clicked",
    "message_replied",
    "order_paid",
    "joined_group",
    "checked_in",
    "live_viewed",
    "page_visit",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def load(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from siyu.core.bulk import bulk_insert, load_mode
    from siyu.customers.models import Customer, Relationship
    from siyu.events.models import Event
    from siyu.org.models import Staff

    rng = random.Random(args.seed)
    now = timezone.now()
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench{i}") for i in range(args.staff)
    )
    staff = Staff.objects.bulk_create(Staff(user=u, name=u.username) for u in users)
    staff_ids = [s.pk for s in staff]
    t = time.perf_counter()
    rows = (
        (f"客户{i}", rng.choice(staff_ids), now - timedelta(days=rng.uniform(0, 400)), now, now)
        for i in range(args.customers)
    )
    fields = ["name", "owner", "first_seen_at", "created_at", "updated_at"]
    bulk_insert(Customer, fields, rows)
    ids = list(Customer.objects.values_list("pk", "owner_id"))
    friends = (
        (cid, rng.choice([s for s in staff_ids if s != owner]), now)
        for cid, owner in ids
        if rng.random() < 0.2
    )
    bulk_insert(Relationship, ["customer", "staff", "added_at"], friends)
    customer_ids = [cid for cid, _ in ids]
    events = (
        (rng.choice(customer_ids), rng.choice(TYPES), now - timedelta(days=rng.uniform(0, 60)), {})
        for _ in range(args.events)
    )
    with transaction.atomic(), load_mode(Event):
        bulk_insert(Event, ["customer", "type", "occurred_at", "properties"], events)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"loaded in {time.perf_counter() - t:.1f} s")


def main() -> None:
    args = parse_args()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from siyu.customers.models import Customer
    from siyu.leads.selectors import hot_leads, lead_events, score_expression
    from siyu.org.models import Staff

    call_command("migrate", verbosity=0)
    if not Customer.objects.exists():
        load(args)
    staff = Staff.objects.order_by("pk").first()
    owned = Customer.objects.filter(owner=staff).count()
    print(f"staff {staff.pk}: owns {owned} customers")
    for page in (1, 20):
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            result = hot_leads(staff_id=staff.pk, page=page)
            times.append(time.perf_counter() - t)
        ms = [x * 1000 for x in times]
        print(
            f"page {page}: {len(result.leads)} leads, median {statistics.median(ms):.0f} ms"
            f" (min {min(ms):.0f}, max {max(ms):.0f})"
        )
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    qs = (
        lead_events(staff_id=staff.pk, since=now - timedelta(days=30), now=now)
        .values("customer_id")
        .annotate(score=score_expression(now=now, half_life_days=3))
        .order_by("-score")[:51]
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        print("\n".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
