"""Accepted or duplicate, truthfully: a key stored by someone else while a batch is under way
makes that item a duplicate, never a second "accepted" for one stored row. And the batch
endpoint, which pauses the garbage collector, leaves it on when it is done."""

import gc
import json
import threading

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from siyu.core.api_keys import api_key_create
from siyu.customers.models import Customer
from siyu.customers.tests.factories import PhoneIdentityFactory
from siyu.events import services
from siyu.events.models import Event

BATCH = "/api/v1/events/batch"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
)


@pytest.fixture
def key(org):
    return api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])[1]


def post_batch(key: str, items: list[dict]) -> dict:
    response = Client().post(
        BATCH,
        json.dumps({"events": items}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.content
    return response.json()


def item(idempotency_key: str, customer: dict | None = None, **overrides) -> dict:
    return {
        "customer": customer or {"phone": "13912345678"},
        "type": "paid",
        "occurred_at": timezone.now().isoformat(),
        "idempotency_key": idempotency_key,
        **overrides,
    }


def statuses(answer: dict) -> list[str]:
    return [r["status"] for r in answer["results"]]


@pytest.mark.django_db
def test_a_key_stored_while_the_batch_is_resolving_customers_is_a_duplicate(key, monkeypatch):
    # given a known customer, and another request that stores key "k1" while this batch is
    # past validation and finding its customers
    customer = PhoneIdentityFactory(value="+8613912345678").customer
    resolve = services._customers

    def meanwhile(events, results):
        Event.objects.create(
            customer=customer, type="other_sender", occurred_at=timezone.now(), idempotency_key="k1"
        )
        return resolve(events, results)

    monkeypatch.setattr(services, "_customers", meanwhile)
    # when the batch carries k1 and a fresh k2
    answer = post_batch(key, [item("k1"), item("k2")])
    # then k1 is reported as the duplicate it is, and each key is stored once
    assert statuses(answer) == ["duplicate", "accepted"]
    assert (answer["accepted"], answer["duplicate"]) == (1, 1)
    assert Event.objects.get(idempotency_key="k1").type == "other_sender"
    assert Event.objects.filter(idempotency_key="k2").count() == 1


@pytest.mark.django_db
def test_a_repeat_naming_an_unknown_customer_is_a_duplicate_and_creates_nobody(key):
    # given an event stored under key k1 for a customer first seen with it
    assert statuses(post_batch(key, [item("k1")])) == ["accepted"]
    # when it is sent again naming the customer by an identifier not seen before
    again = post_batch(key, [item("k1", customer={"email": "new@example.com"})])
    # then it is a duplicate, and no customer is created for it
    assert statuses(again) == ["duplicate"]
    assert Customer.objects.count() == 1
    assert Event.objects.count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("other_commits", "ours"), [(True, "duplicate"), (False, "accepted")])
def test_a_batch_waiting_on_an_uncommitted_insert_of_its_key_reports_the_outcome(
    key, other_commits, ours
):
    # given another transaction that has inserted key k1 and not yet ended
    customer = PhoneIdentityFactory(value="+8613912345678").customer
    inserted, release = threading.Event(), threading.Event()
    failures: list[Exception] = []

    def other_request():
        try:
            with transaction.atomic():
                Event.objects.create(
                    customer=customer,
                    type="other",
                    occurred_at=timezone.now(),
                    idempotency_key="k1",
                )
                inserted.set()
                release.wait(10)
                transaction.set_rollback(not other_commits)
        except Exception as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            connections.close_all()

    other = threading.Thread(target=other_request)
    other.start()
    assert inserted.wait(10)
    # when this batch's insert meets that row (it waits for the other transaction to end)
    threading.Timer(0.5, release.set).start()
    answer = post_batch(key, [item("k1"), item("k2")])
    other.join(10)
    # then it answers what happened: a duplicate if the other committed, else stored here
    assert not failures, failures
    assert statuses(answer) == [ours, "accepted"]
    stored = Event.objects.get(idempotency_key="k1")
    assert stored.type == ("other" if other_commits else "paid")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batches_with_the_same_keys_accept_each_key_once(key):
    # given a known customer and two senders posting the same 200 keys at the same moment
    PhoneIdentityFactory(value="+8613912345678")
    items = [item(f"k{i}") for i in range(200)]
    start = threading.Barrier(2)
    answers: list[dict] = []
    failures: list[Exception] = []

    def sender():
        try:
            start.wait(10)
            answers.append(post_batch(key, items))
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then every key is accepted by exactly one of them, and stored once
    assert not failures, failures
    for i in range(200):
        assert sorted(a["results"][i]["status"] for a in answers) == ["accepted", "duplicate"]
    assert sum(a["accepted"] for a in answers) == Event.objects.count() == 200


@pytest.mark.django_db
def test_the_garbage_collector_runs_again_after_a_batch_whatever_its_outcome(key):
    # given the collector on, as in any process
    assert gc.isenabled()
    PhoneIdentityFactory(value="+8613912345678")
    # when a batch is stored, and another is refused as a whole
    assert statuses(post_batch(key, [item("k1")])) == ["accepted"]
    refused = Client().post(
        BATCH,
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400
    # then the pause the batch endpoint takes from the collector has ended
    assert gc.isenabled()
