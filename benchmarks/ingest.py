"""Time batch event ingestion for known customers: POST /api/v1/events/batch, 1,000 a batch.

Each event names an existing customer by phone (as a shop would send it, 11 digits) or by
WeChat unionid, with a few properties and an idempotency key. Requests go through Django's
test Client in this process: URL routing, JSON parsing, API-key auth, validation, lookup and
insert are all included; the network and a WSGI server are not. Prints events/s (median batch
and overall), queries per batch, the CPU time of this process and of its PostgreSQL backend
(which wall time hides on a busy machine), and with --phases the split of the time.

    createdb -h 127.0.0.1 -U postgres siyu_bench
    export SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench
    .venv/bin/siyu migrate
    .venv/bin/python benchmarks/seed.py --customers 100000 --no-orders
    .venv/bin/python benchmarks/ingest.py --batches 100 --phases

With --server T the same bodies go over HTTP to one `siyu serve` process with T threads, from
--clients connections at once: a web process's own figure, where one request's Python work
overlaps another's wait on PostgreSQL.
"""

import argparse
import http.client
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

import siyu.api  # noqa: E402, F401  (registers the routers before events.api is imported)
from siyu.core.api_keys import api_key_create  # noqa: E402
from siyu.customers.models import Identity  # noqa: E402
from siyu.events import api as events_api  # noqa: E402
from siyu.events import services  # noqa: E402

TYPES = ["viewed_material", "opened_mini_program", "added_to_cart", "clicked_link", "paid"]
SOURCES = ["mini_program", "h5", "wecom", "tmall"]
MATERIALS = ["春季新品", "会员日海报", "直播预告", "新客礼包", "618 清单"]


def known(kind: str, limit: int) -> list[str]:
    return list(
        Identity.objects.filter(kind=kind).order_by().values_list("value", flat=True)[:limit]
    )


def batch_body(
    rng: random.Random, phones: list[str], unionids: list[str], run: str, b: int, size: int
) -> str:
    now = timezone.now()
    events = []
    for i in range(size):
        if unionids and rng.random() < 0.3:
            customer = {"wechat_unionid": rng.choice(unionids)}
        else:
            customer = {"phone": rng.choice(phones)[3:]}  # stored +86…, sent as 11 digits
        events.append(
            {
                "customer": customer,
                "type": rng.choice(TYPES),
                "occurred_at": (now - timedelta(seconds=rng.randrange(86_400))).isoformat(),
                "properties": {
                    "material": rng.choice(MATERIALS),
                    "page": f"/pages/item?id={rng.randrange(10_000)}",
                    "duration_ms": rng.randrange(100, 60_000),
                    "campaign": {"id": rng.randrange(50), "name": "双十二预热"},
                },
                "source": rng.choice(SOURCES),
                "idempotency_key": f"{run}-{b}-{i}",
            }
        )
    return json.dumps({"events": events}, ensure_ascii=False)


# On PostgreSQL the insert also registers the event types (one statement).
INGEST_STEPS = ("identity lookup", "insert")


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and of its PostgreSQL backend (0 if not local)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server = 0.0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return usage.ru_utime + usage.ru_stime, server


class Phases:
    """Wall time and this process's CPU time inside the steps; the rest of a request is
    routing, auth and the response."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def wrap(self, module, name: str, label: str) -> None:
        inner = getattr(module, name)

        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.cpu[label] += time.thread_time() - cpu

        setattr(module, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--size", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--phases", action="store_true", help="split the time by step")
    parser.add_argument("--server", type=int, metavar="THREADS", help="over HTTP, see above")
    parser.add_argument("--clients", type=int, default=2, help="connections with --server")
    args = parser.parse_args()

    phones, unionids = known("phone", 100_000), known("wechat_unionid", 100_000)
    if not phones:
        sys.exit("no customers with a phone: run benchmarks/seed.py first")
    user, _ = get_user_model().objects.get_or_create(
        username="ingest-bench", defaults={"is_superuser": True, "is_staff": True}
    )
    raw_key = api_key_create(actor=user, name="ingest benchmark", scopes=["ingest"])[1]
    rng = random.Random(args.seed)
    run = uuid.uuid4().hex[:8]
    bodies = [batch_body(rng, phones, unionids, run, b, args.size) for b in range(args.batches)]

    if args.server:
        warm = [batch_body(rng, phones, unionids, f"{run}w", b, args.size) for b in range(8)]
        served(args, bodies, warm, raw_key)
        return
    phases = Phases()
    if args.phases:
        phases.wrap(events_api, "batch_items", "parse")
        phases.wrap(events_api, "events_validate", "validate")
        phases.wrap(services, "_customers", "identity lookup")
        phases.wrap(services, "_store", "insert")
        # Wrapped last, so it times the steps above too: what is left is the commit.
        phases.wrap(events_api, "events_ingest", "ingest")

    client = Client()
    headers = {"Authorization": f"Bearer {raw_key}"}
    times, queries = [], []
    client_start, server_start = cpu_seconds()
    for body in bodies:
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.post(
                "/api/v1/events/batch", body, content_type="application/json", headers=headers
            )
            times.append(time.perf_counter() - start)
        answer = response.json()
        if response.status_code != 200 or answer["accepted"] != args.size:
            sys.exit(f"batch not fully accepted: {response.status_code} {str(answer)[:300]}")
        queries.append(len(ctx.captured_queries))
    client_end, server_end = cpu_seconds()
    client_cpu, server_cpu = client_end - client_start, server_end - server_start

    total = sum(times)
    print(f"{connection.vendor}: {args.batches} batches of {args.size} events for known customers")
    print(f"  {len(phones):,} phones, {len(unionids):,} unionids to pick from (30% by unionid)")
    print(
        f"  median batch {statistics.median(times) * 1000:.0f} ms = "
        f"{args.size / statistics.median(times):,.0f} events/s"
    )
    print(f"  overall {args.batches * args.size / total:,.0f} events/s ({total:.1f} s)")
    print(f"  queries per batch: {statistics.median(queries):.0f} (max {max(queries)})")
    # On a shared machine wall time grows with the neighbours' load; CPU time much less.
    per_batch = (client_cpu + server_cpu) / args.batches
    print(
        f"  CPU per batch: {client_cpu / args.batches * 1000:.0f} ms here + "
        f"{server_cpu / args.batches * 1000:.0f} ms in the database server "
        f"(PostgreSQL on this host only) = {args.size / per_batch:,.0f} events/s of CPU time"
    )
    if args.phases:
        # Wall time, and of it this process's CPU time (the rest is waiting: for PostgreSQL,
        # the disk at commit, or a core on a busy machine).
        print(f"  {'ms per batch':>30}:   wall (share)   CPU here")
        for spent, cpu_total in ((phases.seconds, total), (phases.cpu, client_cpu)):
            spent["commit"] = spent["ingest"] - sum(spent[label] for label in INGEST_STEPS)
            spent["routing, auth, response"] = (
                cpu_total - spent["parse"] - spent["validate"] - spent["ingest"]
            )
        labels = ("parse", "validate", *INGEST_STEPS, "commit", "routing, auth, response")
        for label in labels:
            seconds, cpu = phases.seconds[label], phases.cpu[label]
            print(f"  {label:>30}: {seconds / args.batches * 1000:6.1f} ({seconds / total:4.0%})"
                  f" {cpu / args.batches * 1000:8.1f}")  # fmt: skip


def served(args: argparse.Namespace, bodies: list[str], warm: list[str], raw_key: str) -> None:
    """POST the bodies to one `siyu serve` process from several connections; print events/s
    and the CPU time per batch of the server process and of its PostgreSQL backends. The
    `warm` bodies go first, unmeasured: each server thread imports and connects on its first."""
    from siyu.cli import _serve_argv

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = _serve_argv(("127.0.0.1", port), 1, args.server)
    argv.remove("--access-log")
    server = subprocess.Popen(argv, env={**os.environ, "SIYU_DEBUG": "0"})
    headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}

    def post(conn: http.client.HTTPConnection, body: bytes) -> None:
        conn.request("POST", "/api/v1/events/batch", body, headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200 or json.loads(answer)["accepted"] != args.size:
            sys.exit(f"batch not fully accepted: {response.status} {answer[:300]}")

    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        connections = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(args.clients)]
        threads = [
            threading.Thread(target=post, args=(c, w.encode()))
            for c, w in zip(connections, warm, strict=False)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        processes = [
            server.pid,
            *map(int, Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()),
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = [pid for (pid,) in cursor.fetchall()]
        before = {pid: process_cpu(pid) for pid in processes + backends}
        queue = [body.encode() for body in bodies]
        lock = threading.Lock()

        def client(conn: http.client.HTTPConnection) -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                post(conn, body)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        spent = {pid: process_cpu(pid) - before[pid] for pid in before}
    finally:
        server.terminate()
        server.wait()
    web = sum(spent[pid] for pid in processes) / args.batches
    db = sum(spent[pid] for pid in backends) / args.batches
    print(
        f"{connection.vendor}, siyu serve: 1 process x {args.server} threads, "
        f"{args.clients} clients"
    )
    print(
        f"  {args.batches} batches of {args.size} events: "
        f"{args.batches * args.size / wall:,.0f} events/s ({wall:.1f} s)"
    )
    print(
        f"  CPU per batch: {web * 1000:.0f} ms the server process + {db * 1000:.0f} ms PostgreSQL"
    )


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
