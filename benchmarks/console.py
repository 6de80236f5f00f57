"""Time the console pages at scale: list, search, profile and dashboard for each role.

Run against a seeded database (see README.md), e.g. the 1,000,000-customer PostgreSQL one:

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/console.py
"""

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
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from siyu.customers.models import Customer, Identity  # noqa: E402
from siyu.org.models import Staff  # noqa: E402

REPEAT = 5


def timed(client: Client, url: str) -> tuple[float, int, int]:
    """Median milliseconds over REPEAT warm runs, the query count and the status code."""
    client.get(url)
    times = []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(queries), response.status_code


def main() -> None:
    total = Customer.objects.count()
    staff = Staff.objects.filter(role="staff").select_related("user").first()
    manager = Staff.objects.filter(role="manager", store=staff.store).select_related("user").first()
    admin = Staff.objects.filter(role="admin").select_related("user").first()
    sample = Customer.objects.live().filter(owner=staff).exclude(phone="").order_by("-pk").first()
    buyer = Identity.objects.filter(kind="tmall_buyer").order_by("-pk").first()
    surname = sample.name[:1]
    initials = sample.name_initials
    print(f"{total:,} customer records on {connection.vendor}; median of {REPEAT} warm runs\n")
    print(f"{'page':48} {'role':8} {'ms':>8} {'queries':>8}")
    pages = [
        ("home dashboard", "/"),
        ("customer list, first page", "/customers/"),
        (f"search surname {surname}", f"/customers/?q={surname}"),
        (f"search full name {sample.name}", f"/customers/?q={sample.name}"),
        (f"search pinyin initials {initials}", f"/customers/?q={initials}"),
        (f"search pinyin {sample.name_pinyin}", f"/customers/?q={sample.name_pinyin}"),
        ("search full phone", f"/customers/?q={sample.phone[3:]}"),
        ("search last four digits", f"/customers/?q={sample.phone_tail}"),
        ("search Tmall buyer id", f"/customers/?q={buyer.value}"),
        ("filter by stage", "/customers/?stage=repeat"),
        ("customer profile", f"/customers/{sample.pk}/"),
    ]
    for who, member in (("admin", admin), ("manager", manager), ("staff", staff)):
        client = Client()
        client.force_login(member.user)
        for label, url in pages:
            ms, queries, status = timed(client, url)
            flag = "" if status == 200 else f"  (HTTP {status})"
            print(f"{label[:48]:48} {who:8} {ms:8.1f} {queries:8d}{flag}")


if __name__ == "__main__":
    main()
