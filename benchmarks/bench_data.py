"""Add orders, behaviour events and tags to a seeded database, for the segment and layer benchmarks.

Seed the customers first (`benchmarks/seed.py --customers N --no-orders`), then:

    # PostgreSQL: 1M customers → 5M orders, 20M events, ~1.5M customer tags
    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python benchmarks/bench_data.py

    # SQLite: 100k customers → 500k orders, 2M events, ~150k customer tags
    SIYU_VAR_DIR=/tmp/siyu-bench-sqlite .venv/bin/python benchmarks/bench_data.py

The counts default to 5 orders, 20 events and ~1.5 tags per live customer. Everything is drawn
with NumPy from --seed, in chunks, and loaded in two moves: compact numeric rows into a staging
table (binary COPY from a structured array on PostgreSQL, executemany on SQLite), then one
INSERT … SELECT that spells them out (type names, JSON properties, timestamps) inside the
database. On PostgreSQL the target tables' secondary indexes and foreign keys are dropped for
the load and rebuilt once at the end (`core.bulk.load_mode`), then analysed.

Shape of the data:
- Orders: every customer the seed staged as a buyer (first purchase, repeat, member, at risk,
  lost) and a fifth of the engaged ones buy; first-purchase customers once, the others
  1 + a gamma-Poisson number more (many one-time buyers, a heavy tail of repeat buyers). Each
  buys between first being seen and the end of their activity (at-risk and lost customers, and
  some others at random, stopped a while ago); spend per order scatters around a personal level,
  so RFM and CLV fits have something to find. Paid, shipped, completed, refunded (5%) and
  partially refunded (2%); the last week's orders are paid or shipped, not yet completed.
- Events: eight types over the last 365 days, in time order as an event stream is written;
  three customers in four take part, with a skewed, stage-dependent appetite.
- Tags: three groups (an exclusive skin type, non-exclusive needs and behaviours).

A step whose table already has rows is skipped, so an interrupted run can be resumed; each step
draws from its own random stream of --seed.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

DAY = 86_400
ORDER_DAYS = 3 * 365  # the oldest order; customers are only seen from the seed's window on
EVENT_DAYS = 365
CHUNK = 1_000_000

STAGES = ("lead", "contact", "engaged", "first_purchase", "repeat", "member", "at_risk", "lost")
# Per stage: (probability of buying at all, appetite for repeat orders, appetite for events)
STAGE_SHAPE = {
    "lead": (0.0, 0.0, 0.3),
    "contact": (0.0, 0.0, 0.8),
    "engaged": (0.2, 0.2, 2.0),
    "first_purchase": (1.0, 0.0, 1.0),
    "repeat": (1.0, 1.0, 1.2),
    "member": (1.0, 2.0, 1.5),
    "at_risk": (1.0, 0.7, 0.5),
    "lost": (1.0, 0.4, 0.2),
}
# Days since the last order of customers whose stage says they stopped buying.
QUIET_DAYS = {"at_risk": (90, 240), "lost": (240, 500)}
CHURN_SHARE = 0.25  # of the other repeat buyers: stopped at a random point of their history
ORDER_CHANNELS = (("tmall", 45), ("jd", 20), ("douyin", 15), ("store", 12), ("xiaohongshu", 8))
# Order.Status by code in the staging table.
STATUSES = ("completed", "shipped", "paid", "refunded", "partially_refunded")

# (type, source, weight, first property, its range, second property, its range)
EVENT_TYPES = (
    ("material_view", "wecom", 30, "material_id", 500, "seconds", 600),
    ("link_click", "wecom", 20, "link_id", 2000, "position", 10),
    ("mini_program_visit", "mini_program", 15, "page_id", 300, "seconds", 900),
    ("reply", "wecom", 12, "conversation_id", 100000, "length", 200),
    ("live_view", "live", 8, "live_id", 150, "minutes", 120),
    ("check_in", "mini_program", 7, "campaign_id", 40, "streak", 30),
    ("coupon_use", "mini_program", 4, "coupon_id", 80, "saved", 100),
    ("group_join", "wecom", 4, "group_id", 400, "members", 500),
)
EVENTS_ACTIVE_SHARE = 0.75

# (group, dimension, exclusive, ((tag, colour, share of customers), ...))
TAG_GROUPS = (
    (
        "肤质",
        "basic",
        True,
        (
            ("干性肌", "#fa8c16", 0.12),
            ("油性肌", "#13c2c2", 0.12),
            ("混合肌", "#2f54eb", 0.15),
            ("敏感肌", "#eb2f96", 0.08),
        ),
    ),
    (
        "护肤需求",
        "preference",
        False,
        (
            ("保湿", "#1677ff", 0.25),
            ("美白", "#722ed1", 0.18),
            ("抗老", "#a0d911", 0.15),
            ("防晒", "#faad14", 0.12),
            ("祛痘", "#f5222d", 0.08),
        ),
    ),
    (
        "互动偏好",
        "behaviour",
        False,
        (
            ("直播常客", "#52c41a", 0.06),
            ("优惠券敏感", "#fadb14", 0.10),
            ("社群活跃", "#08979c", 0.07),
        ),
    ),
)


class Loader:
    """Stages compact numeric rows and spells them out into a table with INSERT … SELECT."""

    def __init__(self, connection):
        self.connection = connection
        self.postgresql = connection.vendor == "postgresql"

    def create_stage(self, name: str, columns: dict[str, str]) -> None:
        """A temporary table of integer columns: {name: "int4" | "int8" | "int2"}."""
        sql_types = {"int2": "smallint", "int4": "integer", "int8": "bigint"}
        self.columns = columns
        self.stage = name
        body = ", ".join(f"{col} {sql_types[kind]}" for col, kind in columns.items())
        with self.connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({body})")

    def load(self, arrays: dict[str, np.ndarray], insert_sql: str, params: list) -> int:
        """Stage these rows (one array per column), run `insert_sql`, empty the stage."""
        count = len(next(iter(arrays.values())))
        with self.connection.cursor() as cursor:
            if self.postgresql:
                self._copy_binary(cursor, arrays, count)
            else:
                marks = ", ".join("?" * len(self.columns))
                rows = zip(*(arrays[col].tolist() for col in self.columns), strict=True)
                self.connection.connection.executemany(
                    f"INSERT INTO {self.stage} VALUES ({marks})", rows
                )
            cursor.execute(insert_sql, params)
            cursor.execute(f"DELETE FROM {self.stage}")
        return count

    def _copy_binary(self, cursor, arrays: dict[str, np.ndarray], count: int) -> None:
        # PostgreSQL's binary COPY row: int16 field count, then (int32 length, value) per
        # field, big-endian. With fixed-width integers that is a NumPy structured array.
        fields = [("n", ">i2")]
        for col, kind in self.columns.items():
            fields += [
                (f"{col}_len", ">i4"),
                (col, {"int2": ">i2", "int4": ">i4", "int8": ">i8"}[kind]),
            ]
        rows = np.empty(count, dtype=np.dtype(fields))
        rows["n"] = len(self.columns)
        for col, kind in self.columns.items():
            rows[f"{col}_len"] = {"int2": 2, "int4": 4, "int8": 8}[kind]
            rows[col] = arrays[col]
        header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
        with cursor.cursor.copy(f"COPY {self.stage} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(header)
            copy.write(rows.tobytes())
            copy.write((-1).to_bytes(2, "big", signed=True))

    def timestamp(self, column: str) -> str:
        """SQL turning epoch seconds into the column type the ORM stores."""
        if self.postgresql:
            return f"to_timestamp({column})"
        return f"datetime({column}, 'unixepoch')"  # Django's SQLite format: naive UTC text

    def money(self, cents: str) -> str:
        return f"CAST({cents} AS numeric) / 100" if self.postgresql else f"{cents} / 100.0"

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        function = "jsonb_build_object" if self.postgresql else "json_object"
        arguments = ", ".join(f"'{key}', {value}" for key, value in pairs)
        return f"{function}({arguments})"


def case(column: str, values) -> str:
    whens = " ".join(f"WHEN {i} THEN '{value}'" for i, value in enumerate(values))
    return f"CASE {column} {whens} END"


class Step:
    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.started = self.shown = time.perf_counter()
        print(f"{label}: {total:,} rows", flush=True)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.shown >= 10:
            self.shown = now
            elapsed = now - self.started
            print(
                f"  {self.label}: {self.done:,}/{self.total:,} in {elapsed:.1f} s "
                f"({self.done / max(elapsed, 1e-9):,.0f}/s)",
                flush=True,
            )

    def finish(self, what: str) -> None:
        print(f"  {self.label}: {what} in {time.perf_counter() - self.started:.1f} s", flush=True)


def customers_frame(connection) -> dict[str, np.ndarray]:
    """Live customers: id, first seen (epoch seconds) and the seed's stage code, by id."""
    epoch = (
        "CAST(EXTRACT(EPOCH FROM first_seen_at) AS bigint)"
        if connection.vendor == "postgresql"
        else "CAST(strftime('%s', first_seen_at) AS integer)"
    )
    whens = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(STAGES))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {epoch}, CASE stage {whens} ELSE 0 END FROM customers_customer "
            "WHERE merged_into_id IS NULL ORDER BY id"
        )
        rows = np.array(cursor.fetchall(), dtype=np.int64)
    return {"id": rows[:, 0], "seen": rows[:, 1], "stage": rows[:, 2]}


def stage_values(stages: np.ndarray, column: int) -> np.ndarray:
    table = np.array([STAGE_SHAPE[name][column] for name in STAGES])
    return table[stages]


def generate_orders(rng, people: dict, total: int, now: int) -> dict[str, np.ndarray]:
    """All orders, sorted by payment time: customer index, paid epoch, cents, status, channel."""
    n = len(people["id"])
    stage = people["stage"]
    buys = rng.random(n) < stage_values(stage, 0)
    buyers = np.flatnonzero(buys)
    appetite = stage_values(stage[buyers], 1) * rng.gamma(0.35, 1.0, len(buyers))
    appetite = np.minimum(appetite, np.quantile(appetite, 0.999))
    extra = rng.multinomial(max(total - len(buyers), 0), appetite / appetite.sum())
    counts = 1 + extra

    start = np.maximum(people["seen"][buyers], now - ORDER_DAYS * DAY)
    end = np.full(len(buyers), now, dtype=np.int64)
    for name, (low, high) in QUIET_DAYS.items():
        quiet = stage[buyers] == STAGES.index(name)
        end[quiet] = now - rng.integers(low * DAY, high * DAY, quiet.sum())
    churned = (end == now) & (rng.random(len(buyers)) < CHURN_SHARE) & (counts > 1)
    end[churned] = start[churned] + (rng.random(churned.sum()) * (now - start[churned])).astype(
        np.int64
    )
    end = np.clip(end, start + DAY, now)
    level = rng.lognormal(np.log(18_000), 0.6, len(buyers))  # cents: about ¥180 an order
    channel = rng.choice(
        len(ORDER_CHANNELS), len(buyers), p=_shares([w for _, w in ORDER_CHANNELS])
    )

    owner = np.repeat(np.arange(len(buyers)), counts)
    paid = start[owner] + (rng.random(len(owner)) * (end - start)[owner]).astype(np.int64)
    order = np.argsort(paid, kind="stable")
    owner, paid = owner[order], paid[order]
    cents = np.maximum(level[owner] * rng.gamma(4.0, 0.25, len(owner)), 990).astype(np.int64)
    status = np.zeros(len(owner), dtype=np.int16)  # completed
    status[paid > now - 10 * DAY] = 1  # shipped
    status[paid > now - 3 * DAY] = 2  # paid
    luck = rng.random(len(owner))
    status[luck < 0.05] = 3
    status[(luck >= 0.05) & (luck < 0.07)] = 4
    refund = np.zeros(len(owner), dtype=np.int64)
    refund[status == 3] = cents[status == 3]
    partial = status == 4
    refund[partial] = (cents[partial] * rng.uniform(0.1, 0.5, partial.sum())).astype(np.int64)
    return {
        "customer": people["id"][buyers][owner],
        "paid": paid,
        "placed": paid - rng.integers(30, 1800, len(owner)),
        "cents": cents,
        "refund": refund,
        "status": status,
        "channel": channel[owner],
    }


def _shares(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


def load_orders(loader: Loader, rng, people: dict, total: int, now: int, by_code: dict) -> int:
    from siyu.commerce.models import Order

    step = Step("orders", total)
    data = generate_orders(rng, people, total, now)
    step.finish(f"{len(data['paid']):,} generated ({len(np.unique(data['customer'])):,} buyers)")
    loader.create_stage(
        "bench_order_stage",
        {
            "serial": "int8",
            "customer": "int4",
            "channel": "int4",
            "status": "int2",
            "cents": "int8",
            "refund": "int8",
            "placed": "int8",
            "paid": "int8",
        },
    )
    first = Order.objects.count() + 1
    sql = (
        "INSERT INTO commerce_order (channel_id, external_id, customer_id, status, amount, "
        "refund_amount, placed_at, paid_at, receiver_name, phone_display, created_at, "
        "updated_at) "
        f"SELECT channel, 'BENCH' || CAST(serial AS text), customer, {case('status', STATUSES)}, "
        f"{loader.money('cents')}, {loader.money('refund')}, {loader.timestamp('placed')}, "
        f"{loader.timestamp('paid')}, '', '', %s, %s FROM bench_order_stage"
    )
    when = loader_now(loader)
    channel_of = np.array([by_code[code] for code, _ in ORDER_CHANNELS], dtype=np.int64)
    written = 0
    for low in range(0, len(data["paid"]), CHUNK):
        part = {key: values[low : low + CHUNK] for key, values in data.items()}
        part["serial"] = np.arange(first + low, first + low + len(part["paid"]))
        part["channel"] = channel_of[part["channel"]]
        written += loader.load(part, sql, [when, when])
        step.advance(len(part["paid"]))
    return written


def loader_now(loader: Loader):
    from django.utils import timezone

    now = timezone.now()
    return now if loader.postgresql else now.replace(tzinfo=None).isoformat(" ")


def load_events(loader: Loader, rng, people: dict, total: int, now: int) -> int:
    """Week by week, so the rows land in time order; each customer only after first seen."""
    step = Step("events", total)
    n = len(people["id"])
    appetite = stage_values(people["stage"], 2) * rng.gamma(0.6, 1.0, n)
    appetite[rng.random(n) >= EVENTS_ACTIVE_SHARE] = 0
    since = now - EVENT_DAYS * DAY
    active_from = np.maximum(people["seen"], since)
    rate = total / float((appetite * (now - active_from)).sum())  # events per appetite-second
    type_p = _shares([t[2] for t in EVENT_TYPES])
    first_ranges = np.array([t[4] for t in EVENT_TYPES])
    second_ranges = np.array([t[6] for t in EVENT_TYPES])

    loader.create_stage(
        "bench_event_stage",
        {"customer": "int4", "type": "int2", "at": "int8", "a": "int4", "b": "int4"},
    )
    properties = (
        "CASE type "
        + " ".join(
            f"WHEN {i} THEN {loader.json_object([(t[3], 'a'), (t[5], 'b')])}"
            for i, t in enumerate(EVENT_TYPES)
        )
        + " END"
    )
    sources = case("type", [t[1] for t in EVENT_TYPES])
    sql = (
        "INSERT INTO events_event (customer_id, type, occurred_at, properties, source, "
        "idempotency_key, created_at) "
        f"SELECT customer, {case('type', [t[0] for t in EVENT_TYPES])}, "
        f"{loader.timestamp('at')}, {properties}, {sources}, NULL, %s FROM bench_event_stage"
    )
    when = loader_now(loader)
    written = 0
    for low in range(since, now, 7 * DAY):
        high = min(low + 7 * DAY, now)
        lo = np.maximum(active_from, low)
        seconds = np.clip(high - lo, 0, None)
        counts = rng.poisson(appetite * seconds * rate)
        who = np.repeat(np.arange(n), counts)
        at = lo[who] + (rng.random(len(who)) * seconds[who]).astype(np.int64)
        order = np.argsort(at, kind="stable")
        who, at = who[order], at[order]
        kind = rng.choice(len(EVENT_TYPES), len(who), p=type_p).astype(np.int16)
        part = {
            "customer": people["id"][who],
            "type": kind,
            "at": at,
            "a": 1 + (rng.random(len(who)) * first_ranges[kind]).astype(np.int32),
            "b": 1 + (rng.random(len(who)) * second_ranges[kind]).astype(np.int32),
        }
        written += loader.load(part, sql, [when])
        step.advance(len(who))
    return written


def load_tags(loader: Loader, rng, people: dict, now: int) -> int:
    from siyu.tags.models import Tag, TagGroup

    n = len(people["id"])
    expected = int(n * sum(share for *_, tags in TAG_GROUPS for _, _, share in tags))
    step = Step("customer tags", expected)
    loader.create_stage("bench_tag_stage", {"customer": "int4", "tag": "int4", "at": "int8"})
    sql = (
        "INSERT INTO tags_customertag (customer_id, tag_id, source, added_by_id, added_at) "
        f"SELECT customer, tag, 'import', NULL, {loader.timestamp('at')} FROM bench_tag_stage"
    )
    written = 0
    for position, (group_name, dimension, exclusive, tags) in enumerate(TAG_GROUPS):
        group, _ = TagGroup.objects.get_or_create(
            name=group_name,
            defaults={"dimension": dimension, "exclusive": exclusive, "order": position},
        )
        tag_ids = []
        for order, (name, colour, _) in enumerate(tags):
            tag, _ = Tag.objects.get_or_create(
                group=group, name=name, defaults={"colour": colour, "order": order}
            )
            tag_ids.append(tag.pk)
        shares = np.array([share for *_, share in tags])
        if exclusive:  # one draw per customer picks at most one tag of the group
            cut = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")
            members = [np.flatnonzero(cut == i) for i in range(len(tags))]
        else:
            members = [np.flatnonzero(rng.random(n) < share) for share in shares]
        for tag_id, who in zip(tag_ids, members, strict=True):
            seen = np.maximum(people["seen"][who], now - ORDER_DAYS * DAY)
            at = seen + (rng.random(len(who)) * (now - seen)).astype(np.int64)
            part = {
                "customer": people["id"][who],
                "tag": np.full(len(who), tag_id, dtype=np.int32),
                "at": at,
            }
            written += loader.load(part, sql, [])
            step.advance(len(who))
    return written


def layers(connection) -> None:
    """RFM scores and lifecycle stages from the new orders, as the worker computes them."""
    from siyu.segments.services import rfm_recompute, stages_recompute

    summary = rfm_recompute()
    print(f"rfm_recompute: {summary.seconds:.1f} s ({summary.written:,} written)", flush=True)
    started = time.perf_counter()
    changes = sum(stages_recompute().values())
    print(f"stages_recompute: {time.perf_counter() - started:.1f} s ({changes:,} changes)")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Every buyer's row was rewritten: clear the dead versions as autovacuum would, and
        # give the planner the new score distribution.
        vacuum = connection.vendor == "postgresql"
        cursor.execute("VACUUM ANALYZE customers_customer" if vacuum else "ANALYZE")
    print(f"vacuum and statistics: {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders-per-customer", type=float, default=5.0)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-layers", dest="layers", action="store_false", help="skip RFM and stages"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from siyu.commerce.models import Order
    from siyu.core.bulk import load_mode
    from siyu.customers.models import Channel
    from siyu.events.models import Event
    from siyu.tags.models import CustomerTag

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    now = int(time.time())
    people = customers_frame(connection)
    n = len(people["id"])
    print(f"{connection.vendor} {connection.settings_dict['NAME']}: {n:,} live customers")
    codes = [code for code, _ in ORDER_CHANNELS]
    by_code = dict(Channel.objects.filter(code__in=codes).values_list("code", "pk"))
    missing = [code for code in codes if code not in by_code]
    if missing:
        raise SystemExit(f"channels missing (seed first): {', '.join(missing)}")
    loader = Loader(connection)
    orders = int(n * args.orders_per_customer)
    events = int(n * args.events_per_customer)
    steps = (
        ("orders", Order, lambda rng: load_orders(loader, rng, people, orders, now, by_code)),
        ("events", Event, lambda rng: load_events(loader, rng, people, events, now)),
        ("customer tags", CustomerTag, lambda rng: load_tags(loader, rng, people, now)),
    )
    counts = {}
    for index, (label, model, fill) in enumerate(steps):
        if model.objects.exists():  # loaded by an earlier, interrupted run
            print(f"{label}: already loaded, skipped")
            continue
        step_started = time.perf_counter()
        # A random stream per step: a resumed run draws what a full run would have.
        rng = np.random.default_rng([args.seed, index])
        with transaction.atomic(), load_mode(model):
            counts[label] = fill(rng)
            rebuilt = time.perf_counter()
        if loader.postgresql:
            # Sets the visibility map, which index-only scans need; autovacuum would do it
            # later (and is off on some servers).
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {model._meta.db_table}")
        print(
            f"  {label}: {counts[label]:,} rows in {rebuilt - step_started:.1f} s, "
            f"indexes, statistics and vacuum {time.perf_counter() - rebuilt:.1f} s",
            flush=True,
        )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    if args.layers:
        layers(connection)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"elapsed: {elapsed:.1f} s; peak RSS {peak_mb:,.0f} MB")
    print("rows written: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            print(f"database size: {cursor.fetchone()[0]}")


if __name__ == "__main__":
    main()
