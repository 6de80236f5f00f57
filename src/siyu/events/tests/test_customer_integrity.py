"""Events have no foreign key in the database: ingestion's lock on the customers it found, and
the lock a delete takes before cascading, keep every event pointing at a live customer while
batches, deletes and merges run at once (PostgreSQL; SQLite runs one writer at a time)."""

import json
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from siyu.core.api_keys import api_key_create
from siyu.customers.identifiers import Identifier
from siyu.customers.models import Customer, Identity
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import PhoneIdentityFactory
from siyu.events import services
from siyu.events.models import Event

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def key(org):
    return api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])[1]


def items(n: int = 3) -> list[dict]:
    now = timezone.now().isoformat()
    return [
        {"customer": {"phone": "13912345678"}, "type": "paid", "occurred_at": now} for _ in range(n)
    ]


class Background(threading.Thread):
    """Runs `work` on its own database connection; keeps its answer or its exception."""

    def __init__(self, work) -> None:
        super().__init__()
        self.work, self.answer, self.error = work, None, None

    def run(self) -> None:
        try:
            self.answer = self.work()
        except Exception as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            connections.close_all()


def post_batch(key: str, events: list[dict]) -> dict:
    response = Client().post(
        "/api/v1/events/batch",
        json.dumps({"events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.content
    return response.json()


def paused_after_lookup(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """A batch that stops between finding its customers and inserting its events."""
    found, go_on = threading.Event(), threading.Event()
    store = services._store

    def store_later(events, customer_of):
        found.set()
        assert go_on.wait(10)
        return store(events, customer_of)

    monkeypatch.setattr(services, "_store", store_later)
    return found, go_on


def waiting_for_a_lock(sessions: int) -> bool:
    """Whether that many sessions of this database come to wait for a lock within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= sessions:
                return True
        time.sleep(0.02)
    return False


def orphans() -> int:
    return Event.objects.exclude(customer_id__in=Customer.objects.values("pk")).count()


@pytest.mark.parametrize("one_by_one", [False, True], ids=["queryset", "instance"])
def test_a_delete_waits_for_a_batch_that_found_the_customer_and_takes_its_events(
    key, monkeypatch, one_by_one
):
    # given a batch that has found its customer and not yet stored its events
    customer = PhoneIdentityFactory(value="+8613912345678").customer
    found, go_on = paused_after_lookup(monkeypatch)
    batch = Background(lambda: post_batch(key, items()))
    batch.start()
    assert found.wait(10)
    # when the customer is deleted meanwhile
    if one_by_one:
        delete = Background(lambda: Customer.objects.get(pk=customer.pk).delete())
    else:
        delete = Background(lambda: Customer.objects.filter(pk=customer.pk).delete())
    delete.start()
    delete.join(0.5)
    assert delete.is_alive()  # it waits for the batch
    go_on.set()
    batch.join(10)
    delete.join(10)
    # then the batch is stored, and the delete took its events along: no event is orphaned
    assert (batch.error, delete.error) == (None, None)
    assert batch.answer["accepted"] == 3
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert Event.objects.count() == 0
    assert orphans() == 0


def test_a_batch_after_an_uncommitted_delete_does_not_find_the_deleted_customer(key):
    # given a delete of the customer that has not committed yet
    customer = PhoneIdentityFactory(value="+8613912345678").customer
    deleted, go_on = threading.Event(), threading.Event()

    def delete():
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).delete()
            deleted.set()
            assert go_on.wait(10)

    deleting = Background(delete)
    deleting.start()
    assert deleted.wait(10)
    # when a batch names the customer (its lookup waits for the delete to end)
    batch = Background(lambda: post_batch(key, items()))
    batch.start()
    batch.join(0.5)
    go_on.set()
    deleting.join(10)
    batch.join(10)
    # then its events go to a customer created anew for the phone, not to the deleted one
    assert (batch.error, deleting.error) == (None, None)
    assert batch.answer["accepted"] == 3
    assert orphans() == 0
    fresh = Identity.objects.get(kind="phone", value="+8613912345678").customer_id
    assert fresh != customer.pk
    assert set(Event.objects.values_list("customer_id", flat=True)) == {fresh}


def test_a_merge_waits_for_a_batch_that_found_the_customer_and_moves_its_events(key, monkeypatch):
    # given a batch that has found its customer (by phone) and not yet stored its events
    PhoneIdentityFactory(value="+8613912345678")
    by_email = PhoneIdentityFactory(value="+8613900000002").customer
    Identity.objects.create(customer=by_email, kind="email", value="two@example.com")
    found, go_on = paused_after_lookup(monkeypatch)
    batch = Background(lambda: post_batch(key, items()))
    batch.start()
    assert found.wait(10)
    # when OneID learns meanwhile that both customers are one person, and merges them
    merge = Background(
        lambda: customer_resolve(
            identifiers=[
                Identifier("phone", "+8613912345678"),
                Identifier("email", "two@example.com"),
            ],
            reason="test",
        )
    )
    merge.start()
    merge.join(0.5)
    assert merge.is_alive()  # it waits for the batch
    go_on.set()
    batch.join(10)
    merge.join(10)
    # then the batch's events are on the survivor, not on the tombstone
    assert (batch.error, merge.error) == (None, None)
    assert batch.answer["accepted"] == 3
    survivor = merge.answer.customer.pk
    assert Customer.objects.filter(merged_into__isnull=False).count() == 1
    assert set(Event.objects.values_list("customer_id", flat=True)) == {survivor}
    assert orphans() == 0


def test_a_batch_rolled_back_by_a_deadlock_with_a_merge_runs_again(key, monkeypatch):
    # given a batch that has found (and locked) customer X, and names an e-mail not known yet
    x = PhoneIdentityFactory(value="+8613912345678").customer
    z = PhoneIdentityFactory(value="+8613900000003").customer
    found, go_on = threading.Event(), threading.Event()
    lookup = services._live_customers

    def lookup_then_wait(*args):
        answer = lookup(*args)
        if not found.is_set():  # the first attempt only
            found.set()
            assert go_on.wait(10)
        return answer

    monkeypatch.setattr(services, "_live_customers", lookup_then_wait)
    events = [*items(1), {**items(1)[0], "customer": {"email": "new@example.com"}}]
    batch = Background(lambda: post_batch(key, events))
    batch.start()
    assert found.wait(10)
    # and another transaction that gives that e-mail to Z, then wants X for a merge
    attached, merge_now = threading.Event(), threading.Event()

    def attach_then_lock():
        with transaction.atomic():
            Identity.objects.create(customer=z, kind="email", value="new@example.com")
            attached.set()
            assert merge_now.wait(10)
            Customer.objects.select_for_update().get(pk=x.pk)

    other = Background(attach_then_lock)
    other.start()
    assert attached.wait(10)
    go_on.set()  # the batch resolves the e-mail: it waits for the other transaction …
    assert waiting_for_a_lock(1)
    merge_now.set()  # … which waits for the batch's lock on X: PostgreSQL breaks the deadlock
    batch.join(20)
    other.join(20)
    # then the batch stores both events: rolled back as a whole, it ran again (PostgreSQL may
    # pick the other transaction instead when the machine is slow to start its wait)
    assert batch.error is None, batch.error
    assert batch.answer["accepted"] == 2
    if other.error is None:  # the batch was the one rolled back
        assert sorted(Event.objects.values_list("customer_id", flat=True)) == sorted([x.pk, z.pk])
    else:
        assert "deadlock" in str(other.error)
        assert Event.objects.count() == 2
    assert orphans() == 0
