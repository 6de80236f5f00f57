"""bulk_insert(batched=True), which the loader uses: many rows per statement on SQLite."""

from datetime import UTC, date, datetime

import pytest
from django.db import IntegrityError, transaction

from siyu.core.bulk import SQLITE_BATCH_ROWS, bulk_insert, reserve_ids
from siyu.customers.models import Customer, Identity
from siyu.customers.tests.factories import CustomerFactory

SEEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_batched_insert_writes_every_row_across_full_and_partial_statements(db):
    # given more rows than one statement takes, and a remainder
    count = SQLITE_BATCH_ROWS * 2 + 7
    ids = reserve_ids(Customer, count)
    rows = ((pk, f"王{pk}", SEEN, date(1990, 5, 17) if pk % 2 else None) for pk in ids)
    # when they are inserted batched
    written = bulk_insert(Customer, ["id", "name", "first_seen_at", "birthday"], rows, batched=True)
    # then all are stored with their values and the defaults of the columns left out
    assert written == count == Customer.objects.count()
    last = Customer.objects.get(pk=ids[-1])
    assert (last.name, last.first_seen_at, last.stage) == (f"王{ids[-1]}", SEEN, "lead")
    assert Customer.objects.filter(birthday=date(1990, 5, 17)).count() == sum(
        1 for pk in ids if pk % 2
    )


def test_a_failed_batched_insert_keeps_nothing(db):
    # given rows whose last one repeats an identity of an earlier statement
    customer = CustomerFactory()
    rows = [(customer.pk, "jd_buyer", f"jd_{i}") for i in range(SQLITE_BATCH_ROWS + 5)]
    rows.append((customer.pk, "jd_buyer", "jd_0"))
    # when they are inserted batched in a transaction, the duplicate fails the call
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(Identity, ["customer", "kind", "value"], rows, batched=True)
    # and the transaction rolled back keeps nothing of it
    assert not Identity.objects.exists()
