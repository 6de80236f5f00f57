"""Campaign engine figures (issue 6) on PostgreSQL: plan a broadcast to N customers, send
through the webhook adapter to a local sink with W worker processes, and kill a worker with
SIGKILL mid-campaign to check that every delivery reaches the sink exactly once.

Targets: planning 1,000,000 customers with consent and address checks in under 30 s;
sending at 1,000 deliveries/s or more with two workers; exactly once at 100,000 deliveries.

    psql -h 127.0.0.1 -U postgres -c 'create database siyu_campaigns_bench'
    export SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_campaigns_bench
    .venv/bin/python benchmarks/campaigns.py --customers 1000000            # plan
    .venv/bin/python benchmarks/campaigns.py --customers 1000000 --send 20000 --workers 2
    .venv/bin/python benchmarks/campaigns.py --customers 1000000 --send 20000 --huey  # consumers
    .venv/bin/python benchmarks/campaigns.py --customers 1000000 --crash 100000

The first run migrates the database and bulk-loads the customers (COPY): every other one has
a phone, 1 % have said no to SMS, the first 100,000 live in Shanghai. Later runs reuse them and
start by removing the previous runs' campaigns, deliveries and snapshots. The broadcast has one
SMS step (consent and phone checked in the planning INSERT). --send and --crash plan a webhook
campaign to the Shanghai customers (the deliveries beyond the count are cancelled) and run
`siyu.campaigns.tests.killrun work` processes; --crash kills the first one with SIGKILL after a
third has reached the sink, then starts another, and counts the sink's idempotency keys.

Each phase prints wall time, the load average, and the CPU time of the processes involved
(this one, its PostgreSQL backend, and the workers with their backends, read from /proc): on
the shared machine wall time follows the neighbours' load, CPU time much less.
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
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


def sink_server() -> "Sink":
    """A local webhook receiver on asyncio (keep-alive HTTP/1.1, 200 to every complete POST):
    it counts posts and distinct idempotency keys at a fraction of http.server's CPU, which
    shares the two cores with the workers. Returns the counts and the port."""
    sink = Sink()
    started = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, key = 0, ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"x-siyu-delivery":
                        key = value.strip().decode()
                await reader.readexactly(length)  # a sender killed mid-post never gets here
                sink.posts += 1
                sink.keys.add(key)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        sink.port = server.sockets[0].getsockname()[1]
        started.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    started.wait()
    return sink


class Sink:
    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.posts = 0
        self.port = 0


SHANGHAI = 100_000  # customers 0 … 99,999 live in Shanghai: the webhook campaigns' audience


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def backend_cpu(pid: int) -> float:
    """CPU seconds of a local PostgreSQL backend (0 when it is not on this host)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, load average and CPU time (this process, its backend) around a phase."""

    def __enter__(self) -> "Meter":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (self.pid,) = cursor.fetchone()
        self.load_before = load_average()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.db_cpu = backend_cpu(self.pid)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime - self.cpu
        self.db_cpu = backend_cpu(self.pid) - self.db_cpu
        self.load = f"{self.load_before} → {load_average()}"

    def line(self) -> str:
        return (
            f"{self.seconds:.1f} s wall; CPU {self.cpu:.1f} s here + {self.db_cpu:.1f} s in its "
            f"PostgreSQL backend; load average {self.load}"
        )


def customers_ensure(count: int) -> None:
    from siyu.core.bulk import bulk_insert
    from siyu.customers.models import Customer

    have = Customer.objects.count()
    if have == count:
        print(f"reusing {count:,} customers")
        return
    if have:
        sys.exit(f"the database holds {have:,} customers, not {count:,}: use an empty one")
    now = timezone.now()
    started = time.monotonic()
    bulk_insert(
        Customer,
        ["name", "city", "phone", "consent_sms", "first_seen_at"],
        (
            (
                f"客户{n}",
                "上海" if n < SHANGHAI else "杭州",
                f"+86139{n:08d}" if n % 2 == 0 else "",
                False if n % 100 == 1 else None,
                now,
            )
            for n in range(count)
        ),
        binary=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE customers_customer")
    print(f"loaded {count:,} customers in {time.monotonic() - started:.1f} s")


def previous_runs_remove() -> None:
    from siyu.campaigns.models import Campaign, ChannelBucket, Delivery
    from siyu.segments.models import Segment, SegmentSnapshot, SnapshotMember
    from siyu.webhooks.models import WebhookSubscription

    with connection.cursor() as cursor:
        for model in (Delivery, SnapshotMember):
            cursor.execute(f"TRUNCATE {connection.ops.quote_name(model._meta.db_table)} CASCADE")
    for model in (Campaign, SegmentSnapshot, Segment, WebhookSubscription, ChannelBucket):
        model.objects.all().delete()


def owner_get():
    from django.contrib.auth import get_user_model

    from siyu.org.models import Staff

    user, _ = get_user_model().objects.get_or_create(username="bench")
    owner, _ = Staff.objects.get_or_create(user=user, defaults={"name": "运营", "role": "admin"})
    return owner


def plan(owner) -> None:
    from siyu.campaigns.models import Delivery
    from siyu.campaigns.services import campaign_create, campaign_plan, campaign_schedule, step_add
    from siyu.segments.segment_services import segment_create

    now = timezone.now()
    everyone = segment_create(
        name="全部", definition={"not": {"attr": "city", "op": "eq", "value": "无"}}
    )
    campaign = campaign_create(name="百万群发", kind="broadcast", owner=owner, segment=everyone)
    step_add(campaign=campaign, channel="sms", variants=[{"body": "{customer.name}您好"}])
    campaign_schedule(campaign=campaign, now=now)
    with Meter() as meter:
        planned = campaign_plan(campaign=campaign, now=now)
    suppressed = Delivery.objects.filter(campaign=campaign, status="suppressed").count()
    print(
        f"planned {planned:,} deliveries ({suppressed:,} suppressed: no phone or opted out): "
        + meter.line()
    )
    again = time.monotonic()
    assert campaign_plan(campaign=campaign, now=now) == 0
    print(f"a second planner run inserts nothing ({time.monotonic() - again:.2f} s)")
    # The SMS campaign is done with; only webhook campaigns send.
    Delivery.objects.filter(campaign=campaign).update(status="cancelled")


def webhook_campaign(owner, url: str, count: int) -> int:
    from siyu.campaigns.models import Delivery
    from siyu.campaigns.services import campaign_create, campaign_plan, campaign_schedule, step_add
    from siyu.segments.segment_services import segment_create
    from siyu.webhooks.models import WebhookSubscription

    now = timezone.now()
    hook = WebhookSubscription.objects.create(url=url, secret="whsec_bench", event_types=[])
    shanghai = segment_create(name="上海", definition={"attr": "city", "op": "eq", "value": "上海"})
    send = campaign_create(name="Webhook 压测", kind="broadcast", owner=owner, segment=shanghai)
    step_add(campaign=send, channel="webhook", webhook=hook, variants=[{"body": "{customer.name}"}])
    campaign_schedule(campaign=send, now=now)
    planned = campaign_plan(campaign=send, now=now)
    pending = Delivery.objects.filter(campaign=send, status="pending")
    last = pending.order_by("id").values_list("id", flat=True)[count - 1 : count]
    if last:
        pending.filter(id__gt=last[0]).update(status="cancelled")
    print(f"planned {planned:,} webhook deliveries, sending {min(count, planned):,}")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Delivery._meta.db_table)}")
    return min(count, planned)


def worker_start(batch: int, src: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src), "KILLRUN_BATCH": str(batch)}
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.campaigns.tests.killrun", "work"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def worker_result(worker: subprocess.Popen) -> dict:
    return json.loads(worker.communicate()[0].strip().splitlines()[-1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def send(owner, count: int, workers: int, batch: int, src: Path) -> None:
    sink = sink_server()
    total = webhook_campaign(owner, f"http://127.0.0.1:{sink.port}/hook", count)
    before = children_cpu()
    with Meter() as meter:
        running = [worker_start(batch, src) for _ in range(workers)]
        results = [worker_result(w) for w in running]
    rate = len(sink.keys) / meter.seconds
    print(
        f"sent {len(sink.keys):,} of {total:,} distinct keys ({sink.posts:,} posts) with "
        f"{workers} workers, batch {batch}: {rate:,.0f}/s; per worker "
        f"{[r['sent'] for r in results]}\n  {meter.seconds:.1f} s wall; CPU "
        f"{children_cpu() - before:.1f} s in the workers + "
        f"{sum(r.get('db_cpu', 0) for r in results):.1f} s in their PostgreSQL backends + "
        f"{meter.cpu:.1f} s in the sink (this process); load average {meter.load}"
    )


def huey_send(owner, count: int, workers: int, redis_url: str) -> None:
    """The same send through the production path: `workers` Huey consumers (`siyu manage
    run_huey`, one worker thread each) on Redis, each taking one deliveries_send_task from a
    queue of this run's own, the task the minutely scheduler enqueues."""
    sink = sink_server()
    total = webhook_campaign(owner, f"http://127.0.0.1:{sink.port}/hook", count)
    env = {
        **os.environ,
        "SIYU_REDIS_URL": redis_url,
        "SIYU_QUEUE_NAME": f"siyu-bench-{os.getpid()}",
    }
    consumer = [sys.executable, "-m", "siyu.cli", "manage", "run_huey", "--workers", "1"]
    consumers = [
        subprocess.Popen([*consumer, "--no-periodic"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    time.sleep(5)  # both consumers listening before the clock starts
    enqueue = (
        "import django; django.setup(); from siyu.campaigns.tasks import deliveries_send_task; "
        f"[deliveries_send_task() for _ in range({workers})]"
    )
    before = children_cpu()
    with Meter() as meter:
        subprocess.run([sys.executable, "-c", enqueue], env=env, check=True)
        deadline = time.monotonic() + 600
        while len(sink.keys) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    for running in consumers:
        running.terminate()
        running.wait()
    rate = len(sink.keys) / meter.seconds
    print(
        f"Huey on Redis: sent {len(sink.keys):,} of {total:,} distinct keys ({sink.posts:,} "
        f"posts) with {workers} consumers: {rate:,.0f}/s (from the enqueue, the enqueuing "
        f"process's start included)\n  {meter.seconds:.1f} s wall; CPU "
        f"{children_cpu() - before:.1f} s in the consumers and the enqueue + "
        f"{meter.cpu:.1f} s in the sink (this process); load average {meter.load}"
    )


def crash(owner, count: int, batch: int, src: Path) -> None:
    """SIGKILL a sending worker mid-campaign, start another: every key once at the sink."""
    from django.db.models import Count

    from siyu.campaigns.models import Delivery

    sink = sink_server()
    total = webhook_campaign(owner, f"http://127.0.0.1:{sink.port}/hook", count)
    os.environ["SIYU_CAMPAIGN_LEASE_SECONDS"] = "5"  # the rows the dead worker held come back
    before = children_cpu()
    with Meter() as meter:
        first = worker_start(batch, src)
        while len(sink.keys) < total // 3 and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = len(sink.keys)
        second = worker_result(worker_start(batch, src))
    statuses = dict(
        Delivery.objects.filter(campaign__name="Webhook 压测")
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    doubled = sink.posts - len(sink.keys)
    ok = len(sink.keys) == total and statuses.get("sent") == total
    print(
        f"killed the first worker at {at_kill:,} keys; the second sent {second['sent']:,}: "
        f"{len(sink.keys):,} distinct keys of {total:,} at the sink, {sink.posts:,} posts "
        f"({doubled} repeated under the same key: the batch in flight at the kill); "
        f"statuses {statuses}: {'EXACTLY ONCE' if ok else 'MISMATCH'}\n  "
        f"{meter.seconds:.1f} s wall ({len(sink.keys) / meter.seconds:,.0f} keys/s); CPU "
        f"{children_cpu() - before:.1f} s in the workers + {second.get('db_cpu', 0):.1f} s in "
        f"the second one's PostgreSQL backend + {meter.cpu:.1f} s in the sink; "
        f"load average {meter.load}"
    )
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--no-plan", action="store_true", help="skip the 1M-customer plan")
    parser.add_argument("--send", type=int, default=0, help="deliveries to send (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500, help="deliveries per claim")
    parser.add_argument("--crash", type=int, default=0, help="deliveries of the crash run")
    parser.add_argument(
        "--huey", action="store_true", help="--send through Huey consumers on Redis"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--worker-src",
        type=Path,
        default=ROOT / "src",
        help="run the workers from another checkout's src/ (before/after comparisons)",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when the output is a file
    if connection.vendor != "postgresql":
        sys.exit("set SIYU_DATABASE_URL to a PostgreSQL database")
    if max(args.send, args.crash) > min(SHANGHAI, args.customers):
        sys.exit(f"--send and --crash reach at most {SHANGHAI:,} customers")

    call_command("migrate", verbosity=0)
    customers_ensure(args.customers)
    previous_runs_remove()
    owner = owner_get()
    print(f"load average {load_average()}")
    if not args.no_plan:
        plan(owner)
    if args.send and args.huey:
        huey_send(owner, args.send, args.workers, args.redis_url)
    elif args.send:
        send(owner, args.send, args.workers, args.batch, args.worker_src.resolve())
    if args.crash:
        crash(owner, args.crash, args.batch, args.worker_src.resolve())


if __name__ == "__main__":
    main()
