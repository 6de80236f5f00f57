"""Each change queues its event for the subscriptions that want it, inside the change's own
transaction: nothing when it rolls back, nothing without a subscriber, one read of the
subscriptions per transaction, and one import.completed for a whole import."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from siyu.commerce.services import order_upsert
from siyu.customers.identifiers import Identifier
from siyu.customers.models import Customer
from siyu.customers.services import customer_resolve, customers_merge
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.imports.services import import_job_create, import_job_run
from siyu.imports.tests.files import write_csv
from siyu.tags.models import Source
from siyu.tags.services import tag_create, tag_group_create, tags_assign, tags_remove
from siyu.webhooks import events
from siyu.webhooks.models import WebhookDelivery
from siyu.webhooks.services import (
    webhook_subscription_create,
    webhook_subscription_set_active,
)

pytestmark = pytest.mark.django_db


def subscribe(org, *types, url="http://127.0.0.1:9/hook"):
    return webhook_subscription_create(actor=org.admin.user, url=url, event_types=types)


def queued(event_type=None):
    qs = WebhookDelivery.objects.order_by("pk")
    if event_type:
        qs = qs.filter(event_type=event_type)
    return [d.payload for d in qs]


def test_a_new_customer_is_sent_with_a_masked_phone_and_a_known_one_is_not(org):
    subscribe(org, events.CUSTOMER_CREATED)
    created = customer_resolve(identifiers=[("phone", "13912345678")], attributes={"name": "李雷"})
    customer_resolve(identifiers=[("phone", "13912345678")])  # matched: not new
    (payload,) = queued()
    assert payload["type"] == "customer.created" and payload["id"] and payload["created_at"]
    data = payload["data"]["customer"]
    assert data["id"] == created.customer.pk and data["name"] == "李雷"
    assert data["phone_masked"] == "139****5678"
    assert "13912345678" not in str(payload)


def test_a_merge_names_the_survivor_and_the_absorbed(org):
    subscribe(org, events.CUSTOMER_MERGED)
    survivor, absorbed = CustomerFactory(), CustomerFactory()
    customers_merge(survivor=survivor, absorbed=[absorbed], reason="same person")
    (payload,) = queued()
    assert payload["data"] == {
        "survivor_id": survivor.pk,
        "absorbed_ids": [absorbed.pk],
        "reason": "same person",
    }


def upsert(**values):
    return order_upsert(
        channel_code="tmall",
        external_id="T-1",
        identifiers=[Identifier("phone", "+8613900000001")],
        values={"status": "pending", "amount": Decimal("100"), **values},
        items=None,
    )


def test_an_order_is_sent_once_when_paid_and_again_at_each_refund(org):
    ChannelFactory(code="tmall")
    subscribe(org, events.ORDER_PAID, events.ORDER_REFUNDED)
    upsert()
    assert queued() == []  # awaiting payment
    upsert(status="paid")
    upsert(status="paid")  # a repeat post of the same state
    upsert(status="partially_refunded", refund_amount=Decimal("30"))
    upsert(status="refunded", refund_amount=Decimal("100"))
    sent = [(p["type"], p["data"]["order"]["refund_amount"]) for p in queued()]
    assert sent == [
        ("order.paid", "0.00"),
        ("order.refunded", "30.00"),
        ("order.refunded", "100.00"),
    ]
    order = queued()[0]["data"]["order"]
    assert (order["external_id"], order["amount"], order["currency"]) == ("T-1", "100.00", "CNY")


def test_tags_put_on_and_taken_off_are_sent_per_tag_with_the_customer_ids(org):
    subscribe(org, events.TAG_ADDED, events.TAG_REMOVED)
    tag = tag_create(group=tag_group_create(name="兴趣", dimension="preference"), name="护肤")
    people = [CustomerFactory().pk for _ in range(3)]
    tags_assign(customer_ids=people, tag=tag, source=Source.MANUAL)
    tags_assign(customer_ids=people, tag=tag, source=Source.MANUAL)  # nothing new: no event
    tags_remove(customer_ids=people[:1], tag=tag, source=Source.MANUAL)
    added, removed = queued()
    assert added["type"] == "tag.added" and removed["type"] == "tag.removed"
    assert added["data"] == {
        "tag": {"id": tag.pk, "name": "护肤"},
        "source": "manual",
        "customer_ids": sorted(people),
    }
    assert removed["data"]["customer_ids"] == people[:1]


def test_a_large_tagging_is_split_into_events_of_at_most_a_thousand_customers(org):
    subscribe(org, events.TAG_ADDED)
    tag = tag_create(group=tag_group_create(name="批量", dimension="basic"), name="全部")
    ids = list(Customer.objects.bulk_create(CustomerFactory.build() for _ in range(1001)))
    tags_assign(customer_ids=[c.pk for c in ids], tag=tag, source=Source.IMPORT)
    sizes = [len(p["data"]["customer_ids"]) for p in queued()]
    assert sizes == [1000, 1]


def test_every_subscriber_gets_its_own_delivery_of_the_same_event(org):
    one, two = subscribe(org, "*"), subscribe(org, events.CUSTOMER_CREATED)
    subscribe(org, events.ORDER_PAID)  # does not want it
    customer_resolve(identifiers=[("phone", "13912345678")])
    rows = list(WebhookDelivery.objects.order_by("subscription_id"))
    assert [d.subscription_id for d in rows] == sorted([one.pk, two.pk])
    assert rows[0].event_id == rows[1].event_id
    assert all(d.status == "pending" and d.attempts == 0 for d in rows)


def test_nothing_is_queued_when_the_change_rolls_back(org):
    subscribe(org, "*")
    with pytest.raises(RuntimeError), transaction.atomic():
        customer_resolve(identifiers=[("phone", "13912345678")])
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the caller failed after the change")
    assert not WebhookDelivery.objects.exists()
    assert not Customer.objects.exists()


def test_nothing_is_queued_for_a_paused_subscription_or_without_one(org):
    customer_resolve(identifiers=[("phone", "13912345678")])
    paused = subscribe(org, "*")
    webhook_subscription_set_active(subscription=paused, active=False, reason="paused")
    customer_resolve(identifiers=[("phone", "13912345679")])
    assert not WebhookDelivery.objects.exists()


def test_without_subscribers_a_transaction_reads_the_subscriptions_once(org):
    def subscription_reads(ctx):
        return sum('"webhooks_webhooksubscription"' in q["sql"] for q in ctx.captured_queries)

    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        for n in range(5):
            customer_resolve(identifiers=[("phone", f"1391234567{n}")])
    assert subscription_reads(ctx) == 1
    assert not WebhookDelivery.objects.exists()
    # A subscription created in the same transaction is seen by the changes after it.
    with transaction.atomic():
        customer_resolve(identifiers=[("phone", "13800000000")])
        subscribe(org, "*")
        customer_resolve(identifiers=[("phone", "13800000001")])
    assert len(queued()) == 1


def test_an_import_sends_one_summary_instead_of_an_event_per_row(org, tmp_path):
    tmall = ChannelFactory(code="tmall")
    subscribe(org, "*")
    path = write_csv(
        tmp_path / "members.csv",
        [["姓名", "手机号"], *[[f"会员{n}", f"1391234{n:04d}"] for n in range(30)]],
    )
    job = import_job_run(job=import_job_create(path=path, kind="customer", channel=tmall))
    (payload,) = queued()
    assert payload["type"] == "import.completed"
    data = payload["data"]["import"]
    assert (data["id"], data["kind"], data["state"]) == (job.pk, "customer", "done")
    assert data["counts"]["created"] == 30 and data["file_name"] == "members.csv"


def test_a_known_customer_given_new_attributes_or_identifiers_is_sent_as_updated(org):
    subscribe(org, events.CUSTOMER_UPDATED)
    customer = customer_resolve(identifiers=[("phone", "13912345678")]).customer
    customer_resolve(identifiers=[("phone", "13912345678")])  # nothing new: no event
    customer_resolve(identifiers=[("phone", "13912345678")], attributes={"city": "上海"})
    customer_resolve(identifiers=[("phone", "13912345678"), ("email", "li@example.com")])
    first, second = queued()
    assert first["type"] == "customer.updated"
    assert first["data"]["customer"]["id"] == customer.pk
    assert (first["data"]["changed"], first["data"]["customer"]["city"]) == (["city"], "上海")
    assert second["data"]["changed"] == ["identities"]
    assert "li@example.com" not in str(second)
