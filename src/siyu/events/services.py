"""Event ingestion, set-based: one identity lookup per identifier kind for a whole batch."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pydantic
from django.db import IntegrityError, OperationalError, connection, transaction

from siyu.core.bulk import JSONText, any_of, bulk_insert, bulk_insert_ignoring_conflicts, select_in
from siyu.core.errors import DomainError
from siyu.customers.identifiers import Identifier
from siyu.customers.models import Customer, Identity
from siyu.customers.services import customer_resolve
from siyu.events.models import Event, EventType
from siyu.events.schemas import EVENT_WIRE, EVENTS_WIRE, EventIn, Item, item_quick, time_window

ACCEPTED, DUPLICATE, INVALID = "accepted", "duplicate", "invalid"
DEADLOCK, DEADLOCK_ATTEMPTS = "40P01", 3


@dataclass
class ItemResult:
    index: int
    status: str
    errors: list[dict] = field(default_factory=list)


def events_validate(raw: Sequence[dict]) -> tuple[dict[int, Item], list[ItemResult]]:
    """Each raw item of a batch checked on its own: the valid ones by index, and the invalid
    results. pydantic-core checks the shape of all items at once; what the quick checks after
    it cannot vouch for (and an item of the wrong shape) goes through EventIn, which names
    each problem."""
    try:
        wired = EVENTS_WIRE.validate_python(raw)
    except pydantic.ValidationError:
        # Some item has a wrong shape: the others keep the quick path.
        wired = [_wire_or_none(item) for item in raw]
    earliest, latest = time_window()
    valid: dict[int, Item] = {}
    invalid: list[ItemResult] = []
    for index, item in enumerate(raw):
        wire = wired[index]
        checked = item_quick(wire, earliest, latest) if wire is not None else None
        if checked is None:
            try:
                checked = Item.of(EventIn.model_validate(item))
            except pydantic.ValidationError as exc:
                errors = [
                    {"field": ".".join(str(p) for p in e["loc"]) or "event", "reason": e["msg"]}
                    for e in exc.errors()
                ]
                invalid.append(ItemResult(index, INVALID, errors))
                continue
        valid[index] = checked
    return valid, invalid


def _wire_or_none(item: dict) -> dict | None:
    try:
        return EVENT_WIRE.validate_python(item)
    except pydantic.ValidationError:
        return None


def events_ingest(events: dict[int, Item]) -> list[ItemResult]:
    """Store valid events (by their index in the request); a repeated idempotency key, in this
    batch or an earlier one, is reported as a duplicate and stored once.

    Known customers are found with one query per identifier kind. An event whose identifiers
    are partly or wholly unknown (or point at several customers) goes through customer_resolve,
    the OneID door, which creates, attaches and merges; that is one resolution per such event.

    Accepted or duplicate is the insert's own answer (the keys it stored), not a look made
    before it: of two concurrent requests carrying the same key, exactly one reports it
    accepted, since the second insert waits for the first to commit and then skips the row.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        results: dict[int, ItemResult] = {}
        try:
            with transaction.atomic():
                fresh = _first_of_each_key(events, results)
                customer_of = _customers(fresh, results)
                ready = {i: e for i, e in fresh.items() if i in customer_of}
                stored = _store(ready, customer_of)
            break
        except OperationalError as exc:
            # The batch holds its customers' locks while it resolves the unknown ones, which a
            # concurrent merge may hold the other way round; PostgreSQL then rolls one back. If
            # that was this batch as a whole, nothing of it is kept: run it again.
            deadlock = getattr(exc.__cause__, "sqlstate", None) == DEADLOCK
            if not deadlock or connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS:
                raise
    for index, event in ready.items():
        key = event.idempotency_key
        results[index] = ItemResult(index, ACCEPTED if key is None or key in stored else DUPLICATE)
    return [results[i] for i in sorted(results)]


def _first_of_each_key(events: dict[int, Item], results: dict[int, ItemResult]) -> dict:
    """A key repeated within the batch: the first item carries it, the others are duplicates."""
    seen: set[str] = set()
    fresh = {}
    for index, event in events.items():
        key = event.idempotency_key
        if key is not None:
            if key in seen:
                results[index] = ItemResult(index, DUPLICATE)
                continue
            seen.add(key)
        fresh[index] = event
    return fresh


def _customers(events: dict[int, Item], results: dict[int, ItemResult]) -> dict[int, int]:
    """The customer id of each event; events whose customer cannot be resolved are invalid,
    and a repeat of a stored event whose customer is unknown is a duplicate, resolving nobody.
    """
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events.values():
        for kind, namespace, value in event.keys:
            wanted[(kind, namespace)].add(value)
    known = _live_customers(wanted, {e.type for e in events.values()})

    customer_of: dict[int, int] = {}
    unresolved = []
    for index, event in events.items():
        keys = event.keys
        if len(keys) == 1:  # the common case, without a set
            if (found := known.get(keys[0])) is not None:
                customer_of[index] = found
                continue
        else:
            found = {known.get(key) for key in keys}
            if len(found) == 1 and None not in found:
                customer_of[index] = found.pop()
                continue
        unresolved.append(index)
    if not unresolved:
        return customer_of

    # Resolving creates customers and identities, which a repeated event must not do.
    keys = sorted({k for i in unresolved if (k := events[i].idempotency_key) is not None})
    taken = {k for (k,) in select_in(Event, ["idempotency_key"], "idempotency_key", keys)}
    for index in unresolved:
        event = events[index]
        if event.idempotency_key in taken:
            results[index] = ItemResult(index, DUPLICATE)
            continue
        # An earlier resolution in this batch may have made these identifiers known.
        found = {known.get(key) for key in event.keys}
        if len(found) == 1 and None not in found:
            customer_of[index] = found.pop()
            continue
        try:
            resolved = customer_resolve(
                identifiers=[Identifier(k, v, ns) for k, ns, v in event.keys],
                seen_at=event.occurred_at,
                reason="event ingestion",
            )
        except DomainError as exc:
            results[index] = ItemResult(
                index, INVALID, [{"field": f"customer.{exc.field}", "reason": exc.message}]
            )
            continue
        customer_id = resolved.customer.pk
        customer_of[index] = customer_id
        for key in event.keys:
            known[key] = customer_id
        if resolved.merged_ids:
            # Later events in the batch that named an absorbed customer now name the survivor.
            merged = set(resolved.merged_ids)
            for key, value in known.items():
                if value in merged:
                    known[key] = customer_id
            for other, value in customer_of.items():
                if value in merged:
                    customer_of[other] = customer_id
    return customer_of


def _store(events: dict[int, Item], customer_of: dict[int, int]) -> set[str]:
    """Insert the events; answer the idempotency keys stored. A key left out was taken by an
    earlier request, or by a concurrent one that committed first.

    On PostgreSQL the rows are COPied straight into the table, the cheapest insert there is,
    in a savepoint: a key stored before (a sender's retry) or by a concurrent request fails
    the COPY, and then the rows go again through a staging table and INSERT … ON CONFLICT DO
    NOTHING, which skips those keys and says which rows it stored."""
    columns = ["customer_id", "type", "occurred_at", "properties", "source", "idempotency_key"]

    def rows():
        for i, e in events.items():
            yield (
                customer_of[i],
                e.type,
                e.occurred_at,
                JSONText(e.properties),
                e.source,
                e.idempotency_key,
            )

    if connection.vendor == "postgresql":
        try:
            bulk_insert(Event, columns, rows(), binary=True)  # in a savepoint of its own
        except IntegrityError:
            pass
        else:
            return {k for e in events.values() if (k := e.idempotency_key) is not None}
    else:
        _register_types({e.type for e in events.values()})
    return set(
        bulk_insert_ignoring_conflicts(
            Event, columns, rows(), binary=True, returning="idempotency_key"
        )
    )


def _live_customers(
    wanted: dict[tuple[str, str], set[str]], types: set[str]
) -> dict[tuple[str, str, str], int]:
    """The live customer of each stored identity among many, by (kind, namespace, value).

    Stands in for the events' foreign key, which PostgreSQL would check row by row at commit
    (a third of the insert's server time). On PostgreSQL each customer found is locked FOR KEY
    SHARE, as that check would: until this batch commits, a merge (which locks the customers
    it merges FOR UPDATE) or a delete (events.signals) waits, and then moves or deletes these
    events too. A customer merged away meanwhile is not found here (the lock rereads its row),
    so its events go through customer_resolve to the survivor. One message carries a probe
    per identifier kind and the registration of the batch's event types (a probe of the
    unique index for a known name): the lookup costs one round trip.
    """
    found: dict[tuple[str, str, str], int] = {}
    parts = [(kind, namespace, list(values)) for (kind, namespace), values in wanted.items()]
    if not parts:
        return found
    if connection.vendor != "postgresql":
        for kind, namespace, values in parts:
            for value, customer_id in select_in(
                Identity,
                ["value", "customer_id"],
                "value",
                values,
                where={"kind": kind, "namespace": namespace, "customer__merged_into": None},
            ):
                found[(kind, namespace, value)] = customer_id
        return found
    q = connection.ops.quote_name
    probe = (
        f"SELECT i.{q('value')}, i.{q('customer_id')} FROM {q(Identity._meta.db_table)} i "
        f"JOIN {q(Customer._meta.db_table)} c ON c.{q('id')} = i.{q('customer_id')} "
        f"WHERE i.{q('kind')} = %s AND i.{q('namespace')} = %s AND i.{q('value')} {{test}} "
        f"AND c.{q('merged_into_id')} IS NULL FOR KEY SHARE OF c"
    )
    register = (
        f"INSERT INTO {q(EventType._meta.db_table)} (name, label, description, properties) "
        "SELECT unnest(%s::text[]), '', '', '{}'::jsonb ON CONFLICT (name) DO NOTHING"
    )
    statements, params = [], []
    for kind, namespace, values in parts:
        test, test_params = any_of(values)
        statements.append(probe.format(test=test))
        params += [kind, namespace, *test_params]
    statements.append(register)
    params.append(sorted(types))
    with connection.cursor() as cursor:
        # Client-side binding (Django's default) lets one execute carry several statements.
        cursor.execute("; ".join(statements), params)
        for position, (kind, namespace, _) in enumerate(parts):
            if position:
                cursor.nextset()
            for value, customer_id in cursor.fetchall():
                found[(kind, namespace, value)] = customer_id
    return found


def _register_types(names: set[str]) -> None:
    """Unknown types are kept, and registered unlabelled for an admin to name."""
    if not names:
        return
    existing = set(EventType.objects.filter(name__in=names).values_list("name", flat=True))
    EventType.objects.bulk_create(
        [EventType(name=n) for n in sorted(names - existing)], ignore_conflicts=True
    )
