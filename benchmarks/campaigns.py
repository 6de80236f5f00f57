"""Campaign engine figures: plan a broadcast to N customers, then send it through the webhook
adapter to a local sink with W worker processes.

Targets (issue 6): planning 1,000,000 customers with consent and address checks on PostgreSQL
in under 30 s; sending at 1,000 deliveries/s or more with two workers.

    createdb -h 127.0.0.1 -U postgres siyu_campaigns_bench
    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_campaigns_bench \\
        .venv/bin/python benchmarks/campaigns.py --customers 1000000 --send 100000 --workers 2

The database must be empty (it is migrated here). Customers are bulk-loaded (COPY): every
other one has a phone, 1 % have said no to SMS. The broadcast has one SMS step (consent and
phone checked in the planning INSERT) and, for --send, a webhook campaign to the first
--send customers, sent by worker processes (siyu.campaigns.tests.killrun work).
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
os.environ["SIYU_QUIET_HOURS"] = ""  # figures at any hour
os.environ["SIYU_WEBHOOKS_ALLOW_PRIVATE"] = "1"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402


def sink_server() -> tuple[ThreadingHTTPServer, dict]:
    seen: dict = {"keys": set(), "posts": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                seen["posts"] += 1
                seen["keys"].add(self.headers["X-Siyu-Delivery"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--send", type=int, default=0, help="deliveries to send (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from django.contrib.auth import get_user_model

    from siyu.campaigns.models import Delivery
    from siyu.campaigns.services import (
        campaign_create,
        campaign_plan,
        campaign_schedule,
        step_add,
    )
    from siyu.core.bulk import bulk_insert
    from siyu.customers.models import Customer
    from siyu.org.models import Staff
    from siyu.segments.segment_services import segment_create
    from siyu.webhooks.models import WebhookSubscription

    call_command("migrate", verbosity=0)
    now = timezone.now()
    started = time.monotonic()
    owner = Staff.objects.create(
        user=get_user_model().objects.create(username="bench"), name="运营", role="admin"
    )
    bulk_insert(
        Customer,
        ["name", "city", "phone", "consent_sms", "first_seen_at"],
        (
            (
                f"客户{n}",
                "上海" if n < args.send else "杭州",
                f"+86139{n:08d}" if n % 2 == 0 else "",
                False if n % 100 == 1 else None,
                now,
            )
            for n in range(args.customers)
        ),
        binary=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    print(f"loaded {args.customers:,} customers in {time.monotonic() - started:.1f} s")

    everyone = segment_create(
        name="全部", definition={"not": {"attr": "city", "op": "eq", "value": "无"}}
    )
    campaign = campaign_create(name="百万群发", kind="broadcast", owner=owner, segment=everyone)
    step_add(campaign=campaign, channel="sms", variants=[{"body": "{customer.name}您好"}])
    campaign_schedule(campaign=campaign, now=now)
    started = time.monotonic()
    planned = campaign_plan(campaign=campaign, now=now)
    seconds = time.monotonic() - started
    suppressed = Delivery.objects.filter(campaign=campaign, status="suppressed").count()
    print(
        f"planned {planned:,} deliveries ({suppressed:,} suppressed: no phone or opted out) "
        f"in {seconds:.1f} s"
    )
    again = time.monotonic()
    assert campaign_plan(campaign=campaign, now=now) == 0
    print(f"a second planner run inserts nothing ({time.monotonic() - again:.2f} s)")

    if not args.send:
        return
    # The SMS campaign is done with; only the webhook campaign sends.
    Delivery.objects.filter(campaign=campaign).update(status="cancelled")
    server, seen = sink_server()
    hook = WebhookSubscription.objects.create(
        url=f"http://127.0.0.1:{server.server_address[1]}/hook", secret="whsec_bench", event_types=[]
    )
    shanghai = segment_create(
        name="上海", definition={"attr": "city", "op": "eq", "value": "上海"}
    )
    send = campaign_create(name="Webhook 压测", kind="broadcast", owner=owner, segment=shanghai)
    step_add(campaign=send, channel="webhook", webhook=hook, variants=[{"body": "{customer.name}"}])
    campaign_schedule(campaign=send, now=now)
    print(f"planned {campaign_plan(campaign=send, now=now):,} webhook deliveries")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "KILLRUN_BATCH": "500"}
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "siyu.campaigns.tests.killrun", "work"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.workers)
    ]
    results = [json.loads(w.communicate()[0].strip().splitlines()[-1]) for w in workers]
    seconds = time.monotonic() - started
    print(
        f"sent {len(seen['keys']):,} distinct keys ({seen['posts']:,} posts) with "
        f"{args.workers} workers in {seconds:.1f} s: {len(seen['keys']) / seconds:,.0f}/s; "
        f"per worker {[r['sent'] for r in results]}"
    )
    server.shutdown()


if __name__ == "__main__":
    main()
