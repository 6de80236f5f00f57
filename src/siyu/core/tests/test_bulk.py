from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from siyu.core.bulk import (
    JSONText,
    bulk_insert,
    bulk_insert_ignoring_conflicts,
    load_mode,
    reserve_ids,
    select_in,
)
from siyu.customers.models import Channel, Customer, Identity
from siyu.customers.tests.factories import CustomerFactory
from siyu.events.models import Event

SEEN = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize("binary", [False, True])  # text or binary COPY on PostgreSQL
def test_bulk_insert_round_trips_the_values_the_orm_uses(db, binary):
    # given rows of aware datetimes, dates, decimals and nulls, with reserved ids
    ids = reserve_ids(Customer, 3)
    rows = ((pk, f"王{pk}", SEEN, date(1990, 5, 17) if pk % 2 else None, pk % 2 == 0) for pk in ids)
    columns = ["id", "name", "first_seen_at", "birthday", "consent_sms"]
    # when they are bulk-inserted from a generator in small chunks
    count = bulk_insert(Customer, columns, rows, chunk_size=2, binary=binary)
    # then the ORM reads back what was written, and filters on it
    assert count == 3
    first = Customer.objects.get(pk=ids[0])
    assert (first.first_seen_at, first.consent_sms) == (SEEN, ids[0] % 2 == 0)
    # and fields left out get their defaults
    assert (first.stage, first.phone, first.merged_into_id) == ("lead", "", None)
    assert first.created_at is not None
    assert Customer.objects.filter(first_seen_at__gte=SEEN, birthday=date(1990, 5, 17)).exists()
    bulk_insert(
        Channel,
        ["code", "name", "spend", "created_at"],
        [("x", "X", Decimal("1.50"), SEEN)],
        binary=binary,
    )
    assert Channel.objects.get(code="x").spend == Decimal("1.50")


@pytest.mark.parametrize("binary", [False, True])
def test_every_row_of_a_large_insert_keeps_its_own_values(db, binary):
    # given more rows than are prepared at a time, with repeated and unique dates and amounts
    count = 2_501
    ids = reserve_ids(Customer, count)
    rows = [
        (
            pk,
            f"客户{n}",
            SEEN.replace(microsecond=n % 7),
            date(1990, 1, 1 + n % 28) if n % 3 else None,
            Decimal(n) / 100,
        )
        for n, pk in enumerate(ids)
    ]
    # when they are bulk-inserted
    written = bulk_insert(
        Customer, ["id", "name", "first_seen_at", "birthday", "rfm_monetary"], rows, binary=binary
    )
    # then each row reads back as it was given, the last one too
    assert written == count
    stored = Customer.objects.filter(pk__in=ids).order_by("pk")
    assert (
        list(stored.values_list("pk", "name", "first_seen_at", "birthday", "rfm_monetary")) == rows
    )
    # and they can be found again by a list of dates as well as of strings
    born = select_in(Customer, ["id"], "birthday", [date(1990, 1, 2), date(1990, 1, 3)])
    assert sorted(pk for (pk,) in born) == [
        pk for pk, *_, day, _ in rows if day and day.day in (2, 3)
    ]


def test_reserved_ids_are_never_handed_out_again(db):
    # given a customer and a reserved block of ids
    before = CustomerFactory()
    ids = reserve_ids(Customer, 5)
    # then the block lies above every id, and an ordinary insert lands after it
    assert ids.start > before.pk and len(ids) == 5
    assert CustomerFactory().pk >= ids.stop


def test_a_failed_bulk_insert_keeps_nothing(db):
    # given a customer with an identity
    customer = CustomerFactory()
    rows = [
        (customer.pk, "jd_buyer", "jd_1"),
        (customer.pk, "jd_buyer", "jd_1"),
    ]
    # when a bulk insert hits a duplicate
    with pytest.raises(IntegrityError):
        bulk_insert(Identity, ["customer", "kind", "value"], rows)
    # then none of its rows are kept
    assert not Identity.objects.exists()


def test_load_mode_restores_indexes_and_checks_keys(db):
    # given a load inside load_mode
    customer = CustomerFactory()
    columns = ["customer_id", "kind", "namespace", "value", "created_at"]
    with transaction.atomic(), load_mode(Customer, Identity):
        bulk_insert(Identity, columns, [(customer.pk, "tmall_buyer", "", "tb1", SEEN)])
    # then the rows are there and the table is usable as before
    assert Identity.objects.filter(customer=customer, kind="tmall_buyer").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite checks keys at commit")
def test_load_mode_still_rejects_rows_pointing_nowhere(db):
    # given a load inside load_mode of an identity whose customer does not exist
    columns = ["customer_id", "kind", "value", "created_at"]
    indexes = _identity_indexes()
    # then it fails when the foreign keys are rebuilt, and the indexes come back with them
    with pytest.raises(IntegrityError), transaction.atomic(), load_mode(Identity):
        bulk_insert(Identity, columns, [(10**9, "jd_buyer", "jd9", SEEN)])
    assert _identity_indexes() == indexes
    assert "identity_value_idx" in indexes


def _identity_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'customers_identity'")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.parametrize("binary", [False, True])
def test_rows_that_break_a_unique_constraint_are_skipped_and_the_rest_inserted(db, binary):
    # given a channel code already taken
    Channel.objects.create(code="tmall", name="天猫")
    rows = [("tmall", "again", SEEN), ("jd", "京东", SEEN), ("jd", "twice in one call", SEEN)]
    # when rows with that code, a new one and its repeat are inserted twice over
    for _ in range(2):
        bulk_insert_ignoring_conflicts(Channel, ["code", "name", "created_at"], rows, binary=binary)
    # then the taken and repeated codes are skipped, nothing fails, the new one is there once
    assert sorted(Channel.objects.values_list("code", flat=True)) == ["jd", "tmall"]
    assert Channel.objects.get(code="tmall").name == "天猫"


@pytest.mark.parametrize("binary", [False, True])
def test_the_rows_written_are_returned_and_json_text_is_stored_as_its_value(db, binary):
    # given an event already stored under key "k1"
    customer = CustomerFactory()
    columns = ["customer_id", "type", "occurred_at", "properties", "idempotency_key"]
    first = [(customer.pk, "paid", SEEN, {"n": 1}, "k1")]
    assert bulk_insert_ignoring_conflicts(Event, columns, first, returning="idempotency_key") == [
        "k1"
    ]
    # when k1 comes again with k2, whose properties are given as JSON text, and k3 twice
    rows = [
        (customer.pk, "paid", SEEN, {"n": 2}, "k1"),
        (customer.pk, "paid", SEEN, JSONText('{"长": [1, "文本"], "nested": {"ok": true}}'), "k2"),
        (customer.pk, "paid", SEEN, {}, "k3"),
        (customer.pk, "paid", SEEN, {}, "k3"),
    ]
    stored = bulk_insert_ignoring_conflicts(
        Event, columns, rows, binary=binary, returning="idempotency_key"
    )
    # then only the rows written are answered, and the text reads back as the JSON it is
    assert sorted(stored) == ["k2", "k3"]
    assert Event.objects.get(idempotency_key="k1").properties == {"n": 1}
    assert Event.objects.get(idempotency_key="k2").properties == {
        "长": [1, "文本"],
        "nested": {"ok": True},
    }
    assert Event.objects.filter(properties__nested__ok=True).count() == 1


def test_select_in_finds_rows_among_many_values_whatever_they_hold(db):
    # given identities whose values hold quotes, backslashes, braces, commas, Chinese, a tab
    awkward = ["o'neil", "back\\slash", '{"json": [1]}', "a,b", '"quoted"', "会员 007", "NULL"]
    customer = CustomerFactory()
    for value in [*awkward, "tab\there"]:
        Identity.objects.create(customer=customer, kind="store_member_no", value=value)
    # when they are asked for among 3,000 values, most of them stored nowhere
    wanted = [f"nobody-{i}" for i in range(3_000 - len(awkward))] + awkward
    found = select_in(Identity, ["value"], "value", wanted, where={"kind": "store_member_no"})
    # then exactly the stored ones come back, also when a tab is among the values asked for;
    # ids work the same way
    assert sorted(v for (v,) in found) == sorted(awkward)
    with_tab = select_in(Identity, ["value"], "value", [*wanted, "tab\there"])
    assert sorted(v for (v,) in with_tab) == sorted([*awkward, "tab\there"])
    ids = list(Identity.objects.filter(value__in=awkward[:2]).values_list("id", flat=True))
    assert sorted(select_in(Identity, ["id"], "id", [*ids, 10**12])) == sorted((i,) for i in ids)
    assert list(select_in(Identity, ["id"], "value", [])) == []


@pytest.mark.django_db(transaction=True)
def test_the_staging_table_is_made_once_per_session_and_again_after_a_rollback():
    if connection.vendor != "postgresql":
        pytest.skip("the staging table is PostgreSQL's")
    connection.close()  # a fresh session: no staging table yet
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def insert(code: str) -> list:
        row = [(code, code, at)]
        return bulk_insert_ignoring_conflicts(
            Channel, ["code", "name", "created_at"], row, returning="code"
        )

    with pytest.raises(RuntimeError), transaction.atomic():
        assert insert("rolled-back") == ["rolled-back"]
        raise RuntimeError  # takes the table's creation with it
    assert insert("first") == ["first"]  # made again
    with CaptureQueriesContext(connection) as queries:
        assert insert("second") == ["second"]
    assert not [q for q in queries.captured_queries if "CREATE" in q["sql"]]
    assert sorted(Channel.objects.values_list("code", flat=True)) == ["first", "second"]
