from datetime import UTC, datetime

from siyu.customers.identifiers import normalize_phone
from siyu.demo import data
from siyu.demo.context import SeedContext, StaffRef, StoreRef
from siyu.demo.people import IDENTITY_COLUMNS, Batch, People

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _context(customers: int, seed: int = 42) -> SeedContext:
    ctx = SeedContext(seed=seed, customers=customers, now=NOW)
    ctx.stores = [StoreRef(i + 1, *store[:2], *store[2:]) for i, store in enumerate(data.STORES)]
    ctx.staff = [StaffRef(100 + i, i % len(ctx.stores), 1 + i % 3) for i in range(20)]
    ctx.channels = {info.code: i + 1 for i, info in enumerate(data.CHANNELS)}
    ctx.customer_ids = range(1, customers + ctx.splits + 1)
    return ctx


def _generate(ctx: SeedContext) -> Batch:
    people, batch = People(ctx), Batch()
    for block in range(people.blocks):
        people.block(block, batch)
    return batch


def test_the_same_seed_generates_the_same_people():
    # given two runs with the same seed and size
    first, second = _generate(_context(2_500)), _generate(_context(2_500))
    # then every row, identifier and time is the same
    assert first == second
    # and another seed gives other people
    assert _generate(_context(2_500, seed=7)).customers != first.customers


def test_generated_identifiers_are_valid_and_unique():
    # given a generated population
    batch = _generate(_context(3_000))
    kind, value = IDENTITY_COLUMNS.index("kind"), IDENTITY_COLUMNS.index("value")
    # then every phone is a valid mainland mobile in E.164, as resolution would store it
    phones = [row[value] for row in batch.identities if row[kind] == "phone"]
    assert phones and all(normalize_phone(phone) == phone for phone in phones)
    # and no identifier belongs to two records
    keys = [(row[kind], row[value]) for row in batch.identities]
    assert len(keys) == len(set(keys))
    # and every record is known by at least one identifier
    assert {row[0] for row in batch.identities} == {row[0] for row in batch.customers}


def test_split_people_arrive_as_two_records_with_disjoint_identifiers():
    # given a population with split people (1 in 100)
    ctx = _context(1_000)
    batch = _generate(ctx)
    # then each split adds a record and one link that joins it to the person's phone
    assert len(batch.customers) == 1_000 + ctx.splits == 1_010
    assert len(batch.links) == ctx.splits
    owners = {(row[1], row[3]): row[0] for row in batch.identities}
    for link in batch.links:
        assert owners[("phone", link.phone)] != owners[(link.kind, link.value)]


def test_times_grow_towards_today_and_stop_at_the_clock():
    # given a population
    batch = _generate(_context(5_000))
    seen = sorted(row[13] for row in batch.customers)
    # then nothing happens after the clock, and the last year has more arrivals than the first
    assert seen[-1] <= NOW
    middle = seen[0] + (NOW - seen[0]) / 2
    assert sum(t >= middle for t in seen) > 1.5 * sum(t < middle for t in seen)
    # and relationships end (are deleted) only after they began
    assert all(row[7] is None or row[2] <= row[7] <= NOW for row in batch.relationships)
