"""Load the public tracked-link page (/m/<code>) under `siyu serve` + PostgreSQL with wrk.

Seeds one published article shared with one customer, starts the server as `siyu serve` runs
it (granian) on loopback and drives it with `wrk --latency` in two runs:

- reload: a browser that sends its visit cookie (a reload within 30 minutes) — no query: each
  process keeps the link it served for 10 s (one SELECT after that);
- open: every request is a new visit of a phone browser — one INSERT of the view, marked
  pending; each server process queues one follow-up task (event, counters, notification for
  every pending view) per 2 seconds at most, to Redis. No worker runs during the measurement;
  the queued tasks are counted and dropped, then the follow-up of all the recorded views is
  run once here and timed (what the worker would have done in slices during the run).

Needs wrk (`apt-get install -y wrk`), PostgreSQL and Redis:

    .venv/bin/python benchmarks/radar.py \\
        --database-url postgres://postgres@127.0.0.1:5432/siyu_radar_bench --duration 30

Target: >= 1,000 requests/s with p99 < 20 ms on loopback.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50"
QUEUE = "siyu-radar-bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SIYU_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/siyu_radar_bench"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--bind", default="127.0.0.1:8765")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="threads per process")
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of unmeasured load before each run (workers load templates and URL "
        "patterns, and connect to PostgreSQL, on their first requests)",
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--runs", default="reload,open", help="which runs, comma-separated")
    return parser.parse_args()


def environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SIYU_DATABASE_URL=args.database_url,
        SIYU_REDIS_URL=args.redis_url,
        SIYU_QUEUE_NAME=QUEUE,
        SIYU_DEBUG="0",
        DJANGO_SETTINGS_MODULE="siyu.settings",
        PYTHONPATH=str(ROOT / "src"),
    )
    return env


def create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[-1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(env: dict[str, str]) -> str:
    """Migrate, then one published article shared by one staff member with one customer."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], env=env, check=True
    )
    code = """
from django.contrib.auth import get_user_model
from siyu.content.models import Material
from siyu.content.services import tracked_link_for
from siyu.customers.models import Customer
from siyu.org.models import Staff
from django.utils import timezone
user, _ = get_user_model().objects.get_or_create(username="radar-bench")
staff, _ = Staff.objects.get_or_create(user=user, defaults={"name": "雷达"})
customer, _ = Customer.objects.get_or_create(
    name="压测客户", defaults={"first_seen_at": timezone.now()}
)
body = "".join(f"<p>第{i}段：春季护肤的要点，早晚清洁、保湿和防晒。</p>" for i in range(12))
material, _ = Material.objects.get_or_create(
    title="春季护肤指南（压测）",
    defaults={"kind": "article", "body": body, "status": "published", "owner": staff},
)
print(tracked_link_for(material=material, staff=staff, customer=customer).code)
"""
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def start_server(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen:
    """The server as `siyu serve --workers W --threads T` starts it."""
    from siyu.cli import _bind, _serve_argv

    argv = _serve_argv(_bind(args.bind), args.workers, args.threads_per_worker)
    argv.remove("--access-log")  # a line per request would be measured too
    server = subprocess.Popen(argv, env=env)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{args.bind}/m/not-a-link", timeout=1)
        except urllib.error.HTTPError:
            return server  # a 404 page: the server answers
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


def visit_cookie(args: argparse.Namespace, code: str) -> str:
    """Open the link once like a phone and keep the visit cookie it sets."""
    request = urllib.request.Request(
        f"http://{args.bind}/m/{code}", headers={"User-Agent": PHONE_UA}
    )
    with urllib.request.urlopen(request) as response:
        cookie = response.headers["Set-Cookie"]
    return cookie.split(";", 1)[0]


def wrk(
    args: argparse.Namespace, url: str, headers: list[str], duration: int | None = None
) -> dict[str, float]:
    argv = [
        "wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
        "-d", f"{duration or args.duration}s",
    ]  # fmt: skip
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def count_views(env: dict[str, str], code: str) -> int:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()\n"
            "from siyu.content.models import MaterialView\n"
            f"print(MaterialView.objects.filter(link__code={code!r}).count())",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def follow_up(env: dict[str, str]) -> None:
    """The batched follow-up of every view left pending by the runs, timed."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, time; django.setup()\n"
            "from siyu.content.services import material_views_follow_up\n"
            "start = time.perf_counter()\n"
            "n = material_views_follow_up()\n"
            "took = time.perf_counter() - start\n"
            "print(n, took)",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    n, took = out.stdout.split()
    n, took = int(n), float(took)
    print(
        f"follow-up of {n:,} pending views: {took:.1f} s "
        f"({1000 * took / max(n, 1):.2f} ms a view: event, counters, notification)"
    )


def drop_queue(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    # RedisHuey keeps only [a-z0-9] of the queue name in its keys.
    keys = client.keys(f"huey.*{re.sub('[^a-z0-9]', '', QUEUE)}*")
    queued = sum(client.llen(k) for k in keys if client.type(k) == b"list")
    if keys:
        client.delete(*keys)
    return queued


def server_pids(server: subprocess.Popen, database_url: str) -> tuple[list[int], list[int]]:
    """The server's main process and workers, and the PostgreSQL backends connected to the bench
    database (the workers keep their connections, CONN_MAX_AGE); this script's own short
    connections come and go between the readings."""
    import psycopg

    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    name = database_url.rsplit("/", 1)[-1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres") as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [name]
        ).fetchall()
    return [server.pid, *map(int, children)], [pid for (pid,) in backends]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of these processes so far (a vanished one is left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return spent


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU time spent between two readings; a process that started in between counts whole
    (the workers connect to PostgreSQL on their first query)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def main() -> None:
    args = parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    env = environment(args)
    create_database(args.database_url)
    code = seed(env)
    drop_queue(args.redis_url)
    load = os.getloadavg()
    print(f"link /m/{code}; {os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f}")
    print(
        f"siyu serve (granian): {args.workers} processes x {args.threads_per_worker} threads; "
        f"wrk {args.threads} threads, "
        f"{args.connections} connections, {args.duration} s per run\n"
    )
    server = start_server(args, env)
    try:
        url = f"http://{args.bind}/m/{code}"
        ua = f"User-Agent: {PHONE_UA}"
        wanted = args.runs.split(",")
        runs = []
        if "reload" in wanted:
            runs.append(
                ("reload (visit cookie): no query", [ua, f"Cookie: {visit_cookie(args, code)}"])
            )
        if "open" in wanted:
            runs.append(("open (new visit): INSERT", [ua]))
        # CPU per request of the server and its PostgreSQL backends: on a machine shared with
        # other work, what the page costs, whatever the others leave of the cores.
        print(
            f"{'run':46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx/3xx':>12} "
            f"{'CPU ms/req: web + db':>21}"
        )
        for label, headers in runs:
            if args.warmup:
                wrk(args, url, headers, duration=args.warmup)
            before = count_views(env, code)
            web, db = server_pids(server, args.database_url)
            web_cpu, db_cpu = cpu_seconds(web), cpu_seconds(db)
            result = wrk(args, url, headers)
            n = max(result["requests"], 1)
            web_after, db_after = server_pids(server, args.database_url)
            web_cpu = 1000 * cpu_spent(web_cpu, cpu_seconds(web_after)) / n
            db_cpu = 1000 * cpu_spent(db_cpu, cpu_seconds(db_after)) / n
            recorded = count_views(env, code) - before
            print(
                f"{label:46} {result['rps']:9.0f} {result['p50']:8.2f} {result['p99']:8.2f} "
                f"{result['errors']:12d} {web_cpu:12.2f} + {db_cpu:.2f}"
            )
            print(f"{'':46} {result['requests']:,} requests, {recorded:,} views recorded")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nfollow-up tasks queued (dropped): {drop_queue(args.redis_url):,}")
    if "open" in args.runs.split(","):
        follow_up(env)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f}")


if __name__ == "__main__":
    main()
