"""Processes for the crash test and the send benchmark: seed a broadcast to a webhook sink,
and run a sender until nothing is left. Run as `python -m siyu.campaigns.tests.killrun`.

    killrun seed N URL SECRET   customers, a segment, a webhook step; scheduled and planned
    killrun work                send until no delivery is pending or sending; print counts
"""

import json
import os
import sys
import time
from pathlib import Path


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()


def seed(count: int, url: str, secret: str) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from siyu.campaigns.services import campaign_create, campaign_plan, campaign_schedule, step_add
    from siyu.core.bulk import bulk_insert
    from siyu.customers.models import Customer
    from siyu.org.models import Staff
    from siyu.segments.segment_services import segment_create
    from siyu.webhooks.models import WebhookSubscription

    now = timezone.now()
    user = get_user_model().objects.create(username="owner")
    owner = Staff.objects.create(user=user, name="运营", role=Staff.Role.ADMIN)
    bulk_insert(
        Customer,
        ["name", "city", "first_seen_at"],
        ((f"客户{n}", "上海", now) for n in range(count)),
    )
    segment = segment_create(
        name="全部上海", definition={"attr": "city", "op": "eq", "value": "上海"}
    )
    hook = WebhookSubscription.objects.create(url=url, secret=secret, event_types=[])
    campaign = campaign_create(name="压测", kind="broadcast", owner=owner, segment=segment)
    step_add(
        campaign=campaign, channel="webhook", webhook=hook, variants=[{"body": "{customer.name}"}]
    )
    campaign_schedule(campaign=campaign, now=now)
    started = time.monotonic()
    planned = campaign_plan(campaign=campaign, now=now)
    print(json.dumps({"planned": planned, "plan_seconds": round(time.monotonic() - started, 2)}))


def work() -> None:
    from django.db.models import Count

    from siyu.campaigns.models import Delivery
    from siyu.campaigns.services import deliveries_send_due

    open_statuses = [Delivery.Status.PENDING, Delivery.Status.SENDING]
    started, sent = time.monotonic(), 0
    while Delivery.objects.filter(status__in=open_statuses).exists():
        summary = deliveries_send_due(batch=int(os.environ.get("KILLRUN_BATCH", "200")))
        sent += summary.sent
        if not summary.sent:
            time.sleep(0.2)  # rows claimed by a dead worker wait for their lease
    counts = dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {"statuses": counts, "sent": sent, "seconds": round(elapsed, 2), "db_cpu": _db_cpu()}
        )
    )


def _db_cpu() -> float:
    """CPU seconds of this process's PostgreSQL backend, when it runs on this host (benchmark)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    _setup()
    if sys.argv[1] == "seed":
        seed(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        work()
