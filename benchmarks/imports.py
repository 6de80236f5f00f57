"""Time a large import end to end: generate an export file, then load it as a job.

The file mixes rows that match customers already in the database, rows that repeat other rows
of the file, invalid rows and new people, then `import_job_create` + `import_job_run` load it.
Prints rows/s and peak RSS (this process; the database server is not included).
`--existing N` first seeds an empty database with N demo customers (no orders) to match
against; `--again` imports the same file a second time (nothing new: the idempotent path).

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/imports.py customers --rows 1000000 --existing 1000000
    SIYU_VAR_DIR=/tmp/siyu-bench .venv/bin/python benchmarks/imports.py orders --rows 1000000
"""

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from siyu.customers.models import Channel, Customer, Identity  # noqa: E402
from siyu.demo.services import demo_seed  # noqa: E402
from siyu.imports.services import import_job_create, import_job_run  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
MEMBERS = ["姓名", "手机号", "性别", "生日", "城市"]
TAOBAO = ["订单编号", "买家会员名", "买家实际支付金额", "订单状态", "收货人姓名", "联系手机",
          "订单创建时间", "订单付款时间", "宝贝标题", "宝贝总数量", "退款金额"]  # fmt: skip


def known_values(kind: str, limit: int) -> list[str]:
    return list(
        Identity.objects.filter(kind=kind).order_by().values_list("value", flat=True)[:limit]
    )


def write_members(path: Path, rows: int, rng: random.Random) -> None:
    """~20% match stored phones, ~10% repeat an earlier row, 5% invalid, the rest new."""
    known = [v[3:] for v in known_values("phone", rows // 5)]
    seen: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(MEMBERS)
        for i in range(rows):
            roll = rng.random()
            if roll < 0.05:
                phone = f"1{rng.randint(0, 2)}{rng.randint(0, 10**9):09d}"  # not a mobile
            elif roll < 0.25 and known:
                phone = known[i % len(known)]
            elif roll < 0.35 and seen:
                phone = seen[rng.randrange(len(seen))]
            else:
                phone = f"177{i:08d}"  # a range the demo seed does not use
                if len(seen) < 100_000:
                    seen.append(phone)
            out.writerow(
                [
                    rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                    phone,
                    rng.choice("男女"),
                    f"19{rng.randint(60, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(["杭州", "上海", "成都", "广州", ""]),
                ]
            )


def write_orders(path: Path, rows: int, rng: random.Random) -> None:
    """Taobao export: ~30% of buyers already known, repeat buyers, 5% invalid amounts."""
    known = known_values("tmall_buyer", rows // 3)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(TAOBAO)
        for i in range(rows):
            roll = rng.random()
            buyer = (
                known[i % len(known)]
                if roll < 0.3 and known
                else f"tb_bench_{rng.randint(0, rows // 2)}"
            )
            amount = "abc" if roll > 0.95 else f"{rng.randint(19, 1999)}.{rng.randint(0, 99):02d}"
            day = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
            out.writerow(
                [
                    f"B{i:09d}", buyer, amount, rng.choice(["交易成功", "卖家已发货", "交易关闭"]),
                    rng.choice(SURNAMES) + rng.choice(GIVEN), f"1{rng.randint(3, 9)}{'*' * 4}0000",
                    f"{day} 10:00:00", f"{day} 10:01:00", "面霜", rng.randint(1, 3), "",
                ]
            )  # fmt: skip


def as_xlsx(path: Path) -> Path:
    """The CSV as a workbook written as streaming exporters (Java's, openpyxl's) write one:
    strings inline, no <dimension>."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            sheet.append(row)
    xlsx = path.with_suffix(".xlsx")
    book.save(xlsx)
    return xlsx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["customers", "orders"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--existing", type=int, default=0, help="seed N customers first")
    parser.add_argument("--again", action="store_true", help="then import the file again")
    parser.add_argument("--phases", action="store_true", help="time the loader's steps")
    parser.add_argument("--chunk-rows", type=int, help="rows per chunk (default: the loader's)")
    parser.add_argument("--xlsx", action="store_true", help="import the file as a workbook")
    args = parser.parse_args()
    if args.chunk_rows:
        from siyu.imports import services

        services.CHUNK_ROWS = services.SQLITE_CHUNK_ROWS = args.chunk_rows
    if args.phases:
        time_phases()
    call_command("migrate", verbosity=0)
    if args.existing and not Customer.objects.exists():
        started = time.perf_counter()
        demo_seed(customers=args.existing, orders=False)
        print(f"seeded {args.existing:,} customers in {time.perf_counter() - started:.1f} s")
    channel, _ = Channel.objects.get_or_create(code="tmall", defaults={"name": "天猫"})
    print(f"{connection.vendor}: {Customer.objects.count():,} customers stored")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{args.kind}.csv"
        started = time.perf_counter()
        (write_members if args.kind == "customers" else write_orders)(path, args.rows, rng)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        if args.xlsx:
            started = time.perf_counter()
            path = as_xlsx(path)
            print(f"as a workbook ({path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        for _ in range(2 if args.again else 1):
            load(path, args.kind, args.rows, channel)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


# Steps of the main thread; group_rows runs in the read-ahead thread (wall time only).
STEPS = ["_match_existing", "_merge", "_create", "_attach", "_fill_attributes", "load_orders"]
spent: dict[str, float] = {}
spent_server: dict[str, float] = {}  # PostgreSQL backend CPU seconds per step


def time_phases() -> None:
    """Wrap the loader's steps with wall-clock timers (they include the database's work)."""
    from siyu.imports import loader, services

    def timed(name, function, server_too=True):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            server = backend_cpu() if server_too else 0.0
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
                if server_too and connection.vendor == "postgresql":
                    spent_server[name] = spent_server.get(name, 0.0) + backend_cpu() - server

        return wrapper

    for name in STEPS:
        setattr(loader, name, timed(name, getattr(loader, name)))
    services.load_orders = loader.load_orders
    services.group_rows = timed("group_rows (read-ahead)", loader.group_rows, server_too=False)
    services.import_job_report = timed("import_job_report", services.import_job_report)
    services.bulk_insert = timed("row errors", services.bulk_insert)


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and of its PostgreSQL backend (0 if not local)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, backend_cpu()


_backend: dict[object, int] = {}


def backend_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend so far (0 if not local)."""
    if connection.vendor != "postgresql":
        return 0.0
    connection.ensure_connection()
    pid = _backend.get(connection.connection)
    if pid is None:
        _backend.clear()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        _backend[connection.connection] = pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(path: Path, kind: str, rows: int, channel: Channel) -> None:
    done = 0
    last = started = time.perf_counter()

    def progress(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.perf_counter()
        if now - last > 10:
            last = now
            print(f"  {done:,} rows, {done / (now - started):,.0f} rows/s", flush=True)

    client, server = cpu_seconds()
    job = import_job_create(path=path, kind=kind.removesuffix("s"), channel=channel)
    job = import_job_run(job=job, progress=progress)
    elapsed = time.perf_counter() - started
    client_after, server_after = cpu_seconds()
    print(f"{connection.vendor}: job {job.pk} {job.state} {job.message}")
    print(f"{rows:,} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s end to end")
    # On a shared machine wall time varies with the neighbours; CPU seconds much less.
    print(
        f"CPU: {client_after - client:.1f} s here, {server_after - server:.1f} s in the "
        "database server (PostgreSQL on this host only)"
    )
    print(f"counts: {job.counts}")
    if spent:
        print("phases (wall): " + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items()))
        if spent_server:
            rest = server_after - server - sum(spent_server.values())
            print(
                "phases (database server CPU): "
                + ", ".join(f"{k} {v:.1f} s" for k, v in spent_server.items())
                + f", the rest (job counters, commits) {rest:.1f} s"
            )
        spent.clear()
        spent_server.clear()


if __name__ == "__main__":
    main()
