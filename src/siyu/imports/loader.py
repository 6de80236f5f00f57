"""Set-based loading of parsed rows through the OneID rules, one chunk at a time.

A chunk costs a fixed number of statements whatever its size: one lookup per identity kind,
bulk inserts of new customers, identities and orders, bulk updates of what changed. Only a row
that links two existing customers costs more: that merge goes through `customers_merge`.
"""

import gc
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from queue import Full, Queue

from django.db import IntegrityError, connection
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem
from siyu.core.bulk import (
    any_of,
    bulk_insert,
    bulk_update,
    json_values,
    reserve_ids,
    select_in,
)
from siyu.customers.identifiers import name_pinyin
from siyu.customers.models import Channel, Customer, Identity
from siyu.customers.services import customers_merge
from siyu.imports.rows import CustomerRow, OrderRow

SQLITE_CACHE_KB = 256 * 1024
# 400 MB of log instead of 4 MB: consecutive chunks rewrite the same index pages, and a
# checkpoint copies each page once however often it changed since the last one.
SQLITE_CHECKPOINT_PAGES = 100_000
GC_THRESHOLDS = (100_000, 50, 100)  # instead of (700, 10, 10)
CEDE_SECONDS = 0.00005  # what the read-ahead thread sleeps now and then (see `ceding`)
# … after parsing this long. SQLite's loading thread asks for the GIL less often (no answers
# over a socket): its parser goes on longer between pauses.
CEDE_EVERY = {"sqlite": 0.0005}
CEDE_EVERY_DEFAULT = 0.0002


PEOPLE_COUNTS = ("created", "matched", "merged", "invalid", "skipped")
ORDER_COUNTS = ("orders_created", "orders_updated")  # an orders file's own, besides its buyers


@dataclass
class Counts:
    created: int = 0
    matched: int = 0
    merged: int = 0
    invalid: int = 0
    skipped: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    # (model label, first id, last id) of each block of rows the chunk inserted.
    ranges: list[tuple[str, int, int]] = field(default_factory=list)
    # Customers of the chunk that were stored before it (matched or merged into).
    known: set[int] = field(default_factory=set)

    def add(self, other: "Counts") -> None:
        for name in PEOPLE_COUNTS + ORDER_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ranges += other.ranges


@dataclass
class Group:
    """Rows of one chunk that share identifiers, i.e. one person."""

    first: int = 0  # index of the group's first row, which orders the groups
    rows: list[int] = field(default_factory=list)
    keys: set[tuple[str, str]] = field(default_factory=set)
    existing: set[int] = field(default_factory=set)
    new_keys: set[tuple[str, str]] = field(default_factory=set)
    customer_id: int | None = None
    # What the one matched customer lacks, in FILLED order; None when the group merges.
    lacks: tuple | None = None
    # The first non-empty value of each of FILLED across the rows, and the name's pinyin.
    attributes: tuple = ()
    pinyin: tuple[str, str] = ("", "")


def resolve_rows(
    rows: Sequence[CustomerRow | OrderRow],
    *,
    channel: Channel,
    seen_at: datetime,
    groups: list[Group] | None = None,
) -> tuple[list[int | None], Counts]:
    """Give each row its customer: match, create or merge, set-based over the chunk.

    groups: group_rows(rows), when the caller made them already (in the read-ahead thread).
    Returns the customer id per row (None for a row without a usable identifier) and counts.
    """
    counts = Counts()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A chunk commits together with the job's counters, so a crash that loses the last
            # commits only makes the job resume a little earlier: no need to wait for the disk.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        elif connection.vendor == "sqlite":
            # The default 2 MB page cache cannot hold the pages a chunk's inserts touch in the
            # customer table's many indexes; a bigger one saves most reads and rewrites.
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
    if groups is None:
        groups = group_rows(rows)
    _match_existing(groups)
    _merge(groups, counts)
    counts.known = {g.customer_id for g in groups if g.existing}
    with references_checked_per_chunk() as checked:
        if checked:
            _lock_referenced(Channel, [channel.pk])
        _create(groups, channel, seen_at, counts)
        if checked:
            _lock_referenced(Customer, {g.customer_id for g in groups if g.existing and g.new_keys})
        _attach(groups, channel, counts)
    _fill_attributes(groups)
    row_customer: list[int | None] = [None] * len(rows)
    for group in groups:
        for index in group.rows:
            row_customer[index] = group.customer_id
        # A group's first row counts as created or merged when it was; every other row matched.
        first_counted = not group.existing or len(group.existing) > 1
        counts.matched += len(group.rows) - (1 if first_counted else 0)
    counts.skipped = row_customer.count(None)
    return row_customer, counts


def group_rows(rows: Sequence[CustomerRow | OrderRow]) -> list[Group]:
    """The chunk's people (_group) with their attributes and pinyin: all that needs no
    database, so the read-ahead thread can do it while the database works on the chunk before.
    """
    groups = _group(rows)
    for group in groups:
        group.attributes = _attributes(rows, group.rows)
        group.pinyin = name_pinyin(group.attributes[0])
    return groups


def _group(rows: Sequence[CustomerRow | OrderRow]) -> list[Group]:
    """Union rows that share any identifier, in the order of each group's first row.

    Most rows carry one identifier and join or open a group by dict lookup; only a row whose
    identifiers belong to several groups so far unites them.
    """
    owner: dict[tuple[str, str], Group] = {}
    groups: list[Group] = []
    for index, row in enumerate(rows):
        keys = row.identifiers
        if not keys:
            continue
        if len(keys) == 1:
            group = owner.get(keys[0])
            if group is None:
                group = owner[keys[0]] = Group(first=index)
                group.keys.add(keys[0])
                groups.append(group)
            group.rows.append(index)
            continue
        found = list({id(g): g for k in keys if (g := owner.get(k)) is not None}.values())
        if not found:
            group = Group(first=index)
            groups.append(group)
        else:
            found.sort(key=lambda g: g.first)
            group, *absorbed = found
            for other in absorbed:
                group.rows += other.rows
                group.keys |= other.keys
                for key in other.keys:
                    owner[key] = group
                other.rows = []
            if absorbed:
                group.rows.sort()
        group.rows.append(index)
        for key in keys:
            owner[key] = group
            group.keys.add(key)
    return [g for g in groups if g.rows]


# What each matched customer lacks (one flag per FILLED, in order): a group is sent to the
# attribute fill only when its rows hold something its customer lacks.
FILLED = ("name", "gender", "birthday", "province", "city", "phone")
MATCH_COLUMNS = """i.value, i.customer_id, c.name = '', c.gender = '', c.birthday IS NULL,
    c.province = '', c.city = '', c.phone = ''"""
MATCH_FROM = """
FROM {identity} i JOIN {customer} c ON c.id = i.customer_id
WHERE i.kind = %s AND i.namespace = '' AND i.value {test}
"""
MATCH_BATCH = 2_000  # SQLite: values per IN list


def _match_existing(groups: list[Group]) -> None:
    by_kind: dict[str, set[str]] = defaultdict(set)
    for group in groups:
        for kind, value in group.keys:
            by_kind[kind].add(value)
    found: dict[tuple[str, str], int] = {}
    lacks: dict[int, tuple] = {}
    quote = connection.ops.quote_name
    tables = {
        "identity": quote(Identity._meta.db_table),
        "customer": quote(Customer._meta.db_table),
    }
    if connection.vendor == "sqlite":
        sql = f"SELECT json_group_array(json_array({MATCH_COLUMNS})) {MATCH_FROM}"
    else:
        sql = f"SELECT {MATCH_COLUMNS} {MATCH_FROM}"
    with connection.cursor() as cursor:
        for kind, values in by_kind.items():
            for test, params in _value_tests(list(values)):
                cursor.execute(sql.format(test=test, **tables), [kind, *params])
                matches = cursor.fetchall()
                if connection.vendor == "sqlite":
                    matches = json.loads(matches[0][0])
                for value, customer_id, *flags in matches:
                    found[(kind, value)] = customer_id
                    lacks[customer_id] = tuple(flags)
    for group in groups:
        group.existing = {found[key] for key in group.keys if key in found}
        group.new_keys = {key for key in group.keys if key not in found}
        if len(group.existing) == 1:
            group.lacks = lacks[next(iter(group.existing))]


def _value_tests(values: list[str]) -> Iterator[tuple[str, list]]:
    """SQL tests for `value` among `values`, with their parameters."""
    if connection.vendor == "postgresql":
        # One parameter: thousands of placeholders cost more than the lookup itself.
        yield any_of(values)
        return
    if connection.vendor == "sqlite":
        # One JSON parameter, and the answer as one JSON value (see _match_existing): the driver
        # lets go of the GIL once for the whole lookup instead of once per row found, so the
        # parser thread does not make every row wait for its turn.
        subquery, params = json_values(values)
        yield f"IN ({subquery})", params
        return
    for start in range(0, len(values), MATCH_BATCH):
        batch = values[start : start + MATCH_BATCH]
        yield f"IN ({', '.join(['%s'] * len(batch))})", batch


def _merge(groups: list[Group], counts: Counts) -> None:
    """A group pointing at several customers merges them: rare, so one service call each."""
    for group in groups:
        if len(group.existing) == 1:
            group.customer_id = next(iter(group.existing))
        elif len(group.existing) > 1:
            customers = list(
                Customer.objects.select_for_update()
                .filter(pk__in=group.existing, merged_into__isnull=True)
                .order_by("first_seen_at", "pk")
            )
            survivor, *absorbed = customers
            customers_merge(survivor=survivor, absorbed=absorbed, reason="import")
            group.customer_id = survivor.pk
            counts.merged += 1


def _create(groups: list[Group], channel: Channel, seen_at: datetime, counts: Counts) -> None:
    new = [g for g in groups if not g.existing]
    if not new:
        return
    ids = reserve_ids(Customer, len(new))
    now = timezone.now()
    records = []
    for customer_id, group in zip(ids, new, strict=True):
        group.customer_id = customer_id
        name, gender, birthday, province, city, phone = group.attributes
        full, initials = group.pinyin
        records.append(
            (
                customer_id, name, full, initials, gender, birthday, province, city, phone,
                phone[-4:], channel.pk, seen_at, now, now,
            )
        )  # fmt: skip
    bulk_insert(
        Customer,
        [
            "id", "name", "name_pinyin", "name_initials", "gender", "birthday", "province",
            "city", "phone", "phone_tail", "first_channel_id", "first_seen_at", "created_at",
            "updated_at",
        ],
        records,
        binary=True,
        batched=True,
    )  # fmt: skip
    counts.created += len(new)
    counts.ranges.append((Customer._meta.label_lower, ids[0], ids[-1]))


def _attach(groups: list[Group], channel: Channel, counts: Counts) -> None:
    """Insert every identity of the chunk that is not stored yet, on its group's customer."""
    new = [(g.customer_id, key) for g in groups for key in sorted(g.new_keys)]
    if not new:
        return
    ids = reserve_ids(Identity, len(new))
    now = timezone.now()
    bulk_insert(
        Identity,
        ["id", "customer_id", "kind", "namespace", "value", "channel_id", "created_at"],
        (
            (pk, customer_id, kind, "", value, channel.pk, now)
            for pk, (customer_id, (kind, value)) in zip(ids, new, strict=True)
        ),
        binary=True,
        batched=True,
    )
    counts.ranges.append((Identity._meta.label_lower, ids[0], ids[-1]))


FILL_BATCH = 1_000
FILL_COLUMNS = "id, name, pinyin, initials, gender, birthday, province, city, phone, tail"
# Each attribute is written only where the customer's is empty: what they have, they keep.
FILL_SQL = """
WITH v({columns}) AS ({source})
UPDATE {fail}{table} SET
    name = CASE WHEN {table}.name = '' THEN v.name ELSE {table}.name END,
    name_pinyin = CASE WHEN {table}.name = '' THEN v.pinyin ELSE {table}.name_pinyin END,
    name_initials = CASE WHEN {table}.name = '' THEN v.initials ELSE {table}.name_initials END,
    gender = CASE WHEN {table}.gender = '' THEN v.gender ELSE {table}.gender END,
    birthday = COALESCE({table}.birthday, v.birthday),
    province = CASE WHEN {table}.province = '' THEN v.province ELSE {table}.province END,
    city = CASE WHEN {table}.city = '' THEN v.city ELSE {table}.city END,
    phone = CASE WHEN {table}.phone = '' THEN v.phone ELSE {table}.phone END,
    phone_tail = CASE WHEN {table}.phone = '' THEN v.tail ELSE {table}.phone_tail END,
    updated_at = %s
FROM v
WHERE {table}.id = v.id AND (
    ({table}.name = '' AND v.name <> '') OR ({table}.gender = '' AND v.gender <> '')
    OR ({table}.birthday IS NULL AND v.birthday IS NOT NULL)
    OR ({table}.province = '' AND v.province <> '') OR ({table}.city = '' AND v.city <> '')
    OR ({table}.phone = '' AND v.phone <> '')
)
"""


def _fill_attributes(groups: list[Group]) -> None:
    """Existing customers keep what they have; empty attributes and phone get the file's.

    One UPDATE … FROM VALUES per batch, touching only the customers that gain something.
    """
    fills = []
    for group in groups:
        lacks = group.lacks
        if not group.existing or (lacks is not None and not any(lacks)):
            continue
        values = group.attributes
        if lacks is not None and not any(v for v, lack in zip(values, lacks, strict=True) if lack):
            continue  # nothing the customer lacks: the UPDATE would skip it anyway
        name, gender, birthday, province, city, phone = values
        # Pinyin is written only with a name the customer lacks.
        pinyin = group.pinyin if lacks is None or lacks[0] else ("", "")
        fills.append(
            (
                group.customer_id, name, *pinyin, gender,
                connection.ops.adapt_datefield_value(birthday), province, city, phone, phone[-4:],
            )
        )  # fmt: skip
    if not fills:
        return
    table = connection.ops.quote_name(Customer._meta.db_table)
    if connection.vendor == "postgresql":
        _fill_by_copy(fills, table)
        return
    row_sql = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        for start in range(0, len(fills), FILL_BATCH):
            batch = [
                (*f[:5], connection.ops.adapt_datefield_value(f[5]), *f[6:])
                for f in fills[start : start + FILL_BATCH]
            ]
            # OR FAIL: SQLite keeps no statement journal of the pages updated (the chunk's
            # transaction rolls back as a whole on an error anyway).
            sql = FILL_SQL.format(
                fail="OR FAIL ",
                columns=FILL_COLUMNS,
                source="VALUES " + ", ".join([row_sql] * len(batch)),
                table=table,
            )
            cursor.execute(sql, [*(value for fill in batch for value in fill), now])


def _fill_by_copy(fills: list[tuple], table: str) -> None:
    """On PostgreSQL: COPY the fills into a session table and update in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS siyu_import_fill (id bigint, name text, "
            "pinyin text, initials text, gender text, birthday date, province text, city text, "
            "phone text, tail text)"
        )
        with cursor.cursor.copy(f"COPY siyu_import_fill ({FILL_COLUMNS}) FROM STDIN") as copy:
            for fill in fills:
                copy.write_row(fill)
        sql = FILL_SQL.format(
            fail="",
            columns=FILL_COLUMNS,
            source=f"SELECT {FILL_COLUMNS} FROM siyu_import_fill",
            table=table,
        )
        cursor.execute(sql, [timezone.now()])
        cursor.execute("TRUNCATE siyu_import_fill")


def _attributes(rows: Sequence[CustomerRow | OrderRow], indexes: list[int]) -> tuple:
    """The first non-empty value of each of FILLED across a group's rows."""
    first = rows[indexes[0]]
    if isinstance(first, OrderRow):
        values = [first.receiver_name or "", "", None, "", "", first.phone or ""]
        fields = ("receiver_name", None, None, None, None, "phone")
    else:
        values = [
            first.name or "", first.gender or "", first.birthday, first.province or "",
            first.city or "", first.phone or "",
        ]  # fmt: skip
        fields = FILLED
    for index in indexes[1:]:
        if all(values):
            break
        row = rows[index]
        for position, name in enumerate(fields):
            if name and not values[position]:
                values[position] = getattr(row, name) or values[position]
    return tuple(values)


def load_orders(
    rows: Sequence[OrderRow], row_customer: list[int | None], *, channel: Channel, counts: Counts
) -> tuple[int, int]:
    """Upsert the chunk's orders by (channel, order number); refunds update the order.

    What a file does not give (a column it lacks, an empty cell, a masked buyer), a stored
    order keeps: a refund-only export updates the refund, not the amount or the buyer.
    Lines of one order arrive together (the chunker never splits an order); an order's lines
    are replaced as a whole when the file has item columns, so importing the same file again
    changes nothing. Returns (orders created, orders updated).
    """
    orders: dict[str, dict] = {}
    lines: dict[str, list[OrderRow]] = defaultdict(list)
    summed: set[str] = set()
    for row, customer_id in zip(rows, row_customer, strict=True):
        ref = row.external_order_id
        order = orders.get(ref)
        if order is None:
            # None: not given by the file (see _complete).
            orders[ref] = order = {
                "customer_id": customer_id,
                "status": row.status,
                "amount": row.amount,
                "refund_amount": row.refund_amount,
                "placed_at": row.created_at,
                "paid_at": row.paid_at,
                "receiver_name": (row.receiver_name or "")[:100],
                "phone_display": (row.phone_display or row.phone or "")[:40],
            }
        elif row.line_id:  # one row per order line: the order's amounts are the lines' sum
            if row.amount is not None:
                order["amount"] = (order["amount"] or 0) + row.amount
            if row.refund_amount is not None:
                order["refund_amount"] = (order["refund_amount"] or 0) + row.refund_amount
            summed.add(ref)
        order["customer_id"] = order["customer_id"] or customer_id
        lines[ref].append(row)

    existing = _existing_orders(channel, list(orders))
    kept_customers = _complete(orders, existing, summed)
    with references_checked_per_chunk() as checked:
        if checked:
            _lock_referenced(Channel, [channel.pk])
            # The stored customers an order keeps must still be there too.
            known = counts.known | kept_customers
            _lock_referenced(Customer, {o["customer_id"] for o in orders.values()} & known)
        return _write_orders(orders, lines, existing, channel, counts)


def _complete(
    orders: dict[str, dict], existing: dict[str, tuple[int, tuple]], summed: set[str]
) -> set[int]:
    """Fill in what the file does not give: a stored order's value, else the default.

    The status follows the refund where the parser could not compare it with the amount:
    over several lines, or when the file has no amount (a refund-only export makes every
    refund "refunded"). Returns the stored customers kept for want of one in the file.
    """
    kept_customers: set[int] = set()
    for ref, order in orders.items():
        found = existing.get(ref)
        amount_given = order["amount"] is not None
        refund_given = order["refund_amount"] is not None
        if found is None:
            if not amount_given:
                order["amount"] = 0
            if not refund_given:
                order["refund_amount"] = 0
            order["status"] = order["status"] or Order.Status.PAID
        else:
            stored = dict(zip(KEPT, found[1], strict=True))
            if order["customer_id"] is None and stored["customer_id"] is not None:
                kept_customers.add(stored["customer_id"])
            for name, value in stored.items():
                if order[name] is None or order[name] == "":
                    order[name] = value
        if refund_given and (not amount_given or ref in summed):
            order["status"] = _order_status(order)
    return kept_customers


def _write_orders(
    orders: dict[str, dict],
    lines: dict[str, list[OrderRow]],
    existing: dict[str, tuple[int, tuple]],
    channel: Channel,
    counts: Counts,
) -> tuple[int, int]:
    now = timezone.now()
    fields = list(next(iter(orders.values())).keys()) if orders else []
    new_refs = [ref for ref in orders if ref not in existing]
    ids = reserve_ids(Order, len(new_refs)) if new_refs else []
    bulk_insert(
        Order,
        ["id", "channel_id", "external_id", *fields, "created_at", "updated_at"],
        (
            (pk, channel.pk, ref, *orders[ref].values(), now, now)
            for pk, ref in zip(ids, new_refs, strict=True)
        ),
        binary=True,
        batched=True,
    )
    if new_refs:
        counts.ranges.append((Order._meta.label_lower, ids[0], ids[-1]))
    # A later export repeats most orders unchanged: only what changed is written again.
    compared = len(COMPARED)
    changed = [
        ref
        for ref, (_pk, stored) in existing.items()
        if stored[:compared] != _comparable(orders[ref])
    ]
    bulk_update(
        Order,
        [*fields, "updated_at"],
        ((existing[ref][0], *orders[ref].values(), now) for ref in changed),
    )
    # A file without item columns says nothing of the lines: the stored ones stay.
    relined = [ref for ref in changed if any(map(_has_item, lines[ref]))]
    OrderItem.objects.filter(order_id__in=[existing[ref][0] for ref in relined]).delete()
    order_ids = {ref: pk for ref, pk in zip(new_refs, ids, strict=True)}
    order_ids.update((ref, existing[ref][0]) for ref in relined)
    bulk_insert(
        OrderItem,
        ["order_id", "line_id", "product_ref", "title", "sku", "quantity", "unit_price"],
        (
            (
                order_id,
                (row.line_id or "")[:64],
                (row.product_id or "")[:64],
                (row.product_title or "")[:200],
                (row.sku or "")[:100],
                row.quantity or 1,
                row.unit_price,
            )
            for ref, order_id in order_ids.items()
            for row in lines[ref]
            if _has_item(row)
        ),
        binary=True,
        batched=True,
    )
    return len(new_refs), len(changed)


def _has_item(row: OrderRow) -> bool:
    return bool(row.product_title or row.sku or row.product_id)


TRIGGER_FREE_TABLES = (Customer, Identity, Order, OrderItem)


@contextmanager
def references_checked_per_chunk() -> Iterator[bool]:
    """On PostgreSQL, when the role may: the chunk's bulk writes skip the per-row foreign-key
    triggers (session_replication_role = replica, as pg_restore --disable-triggers does);
    yields whether they do. The caller then checks and locks the rows referenced, set-based
    (_lock_referenced); rows the chunk itself inserted need no check.

    A foreign-key check per inserted row was a third of the server's work for a new customer
    and its identity. Only for a superuser (or a role granted SET on the parameter), and only
    while the tables have no trigger of their own, which replica mode would skip too.
    """
    if connection.vendor != "postgresql" or not _may_skip_triggers():
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    yield True
    # After an error the transaction (or the savepoint around it) rolls back, and the SET
    # LOCAL with it; only the normal exit has to switch the triggers back on.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = origin")


def _may_skip_triggers() -> bool:
    privilege = (
        "has_parameter_privilege('session_replication_role', 'SET')"
        if connection.pg_version >= 150000
        else "false"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (current_setting('is_superuser') = 'on' OR {privilege}) AND NOT EXISTS ("
            "SELECT 1 FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text = "
            "ANY(%s))",
            [[m._meta.db_table for m in TRIGGER_FREE_TABLES]],
        )
        return cursor.fetchone()[0]


def _lock_referenced(model, ids: Iterable[int]) -> None:
    """What a foreign-key trigger does for each row, for all of them at once: the referenced
    rows must exist, and stay (FOR KEY SHARE) until the chunk commits.

    Raises IntegrityError naming a missing row; the chunk then rolls back as with the trigger.
    """
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) FOR KEY SHARE", [list(wanted)])
        found = {pk for (pk,) in cursor.fetchall()}
    if missing := wanted - found:
        raise IntegrityError(
            f"{model._meta.verbose_name} {min(missing)} was removed while this import ran"
        )


def _order_status(order: dict) -> str:
    """The status the order's refund makes, against its amount; without a refund, its own."""
    refunded, amount = order["refund_amount"], order["amount"]
    if refunded <= 0:
        return order["status"]
    if refunded >= amount:
        return Order.Status.REFUNDED
    return Order.Status.PARTIALLY_REFUNDED


COMPARED = ("customer_id", "status", "amount", "refund_amount", "placed_at", "paid_at")
# Kept when a file leaves them empty, but a change in them alone is not written again.
KEPT = (*COMPARED, "receiver_name", "phone_display")


def _comparable(order: dict) -> tuple:
    return tuple(
        Decimal(order[k]) if k in ("amount", "refund_amount") else order[k] for k in COMPARED
    )


def _existing_orders(channel: Channel, refs: list[str]) -> dict[str, tuple[int, tuple]]:
    """Order number → (id, the values of KEPT) of the channel's stored orders."""
    found: dict[str, tuple[int, tuple]] = {}
    for ref, pk, *values in select_in(
        Order,
        ["external_id", "id", *KEPT],
        "external_id",
        refs,
        where={"channel_id": channel.pk},
    ):
        found[ref] = (pk, tuple(values))
    return found


def chunked(rows, size: int, *, key=None):
    """Lists of about `size` rows; with `key`, rows sharing a key are never split."""
    chunk: list = []
    for row in rows:
        if len(chunk) >= size and (key is None or key(row) != key(chunk[-1])):
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def ceding(items: Iterable, every: float) -> Iterator:
    """`items`, sleeping CEDE_SECONDS each time `every` seconds have passed since the last
    sleep: for the rows the read-ahead thread parses.

    A thread running Python keeps the GIL until the switch interval (5 ms) has passed since
    another thread asked for it. The loading thread asks each time the database answers a
    statement or takes a COPY buffer, and so waited up to 5 ms each time while the next chunk
    was parsed. A short sleep now and then hands the GIL over at once; the parser, a chunk
    ahead, has the time. Sleeping too often starves it instead: a sleep costs ~0.14 ms here,
    and an order row takes ~0.035 ms to parse (benchmarks/README.md, "Imports").
    """
    clock = time.perf_counter
    due = clock() + every
    for item in items:
        if clock() >= due:
            time.sleep(CEDE_SECONDS)
            due = clock() + every
        yield item


def read_ahead(items: Iterable, depth: int = 1) -> Iterator:
    """Yield `items` as a thread produces them, up to `depth` ahead of the consumer.

    Reading and parsing the next chunk then overlaps the database's work on this one (the
    driver releases the GIL while it waits). An exception in the producer is raised here, after
    the items before it. Closing this generator early stops the thread.

    Meanwhile the cyclic garbage collector runs rarely: a chunk allocates hundreds of thousands
    of objects that all live until it is loaded, and the default thresholds would walk them
    again and again (a quarter of an import's time).
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.05)
                return True
            except Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed over to the consumer, which raises it
            put((end, exc))
        else:
            put((end, None))

    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    thread = threading.Thread(target=produce, name="siyu-import-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
        gc.set_threshold(*thresholds)
