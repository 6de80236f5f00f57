"""Orders over the REST API: scopes, upsert by (channel, external id), refunds, validation."""

import json
from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderItem
from siyu.core.api_keys import api_key_create
from siyu.customers.models import Customer
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory

URL = "/api/v1/orders"


@pytest.fixture
def key(org):
    return api_key_create(actor=org.admin.user, name="oms", scopes=["ingest"])[1]


@pytest.fixture
def post(client, key):
    def _post(body, raw_key=key):
        return client.post(
            URL,
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )

    return _post


def order(**overrides):
    body = {
        "channel": "tmall",
        "external_id": "T-1001",
        "customer": {"phone": "13912345678"},
        "amount": "199.00",
        "placed_at": "2026-11-30T10:00:00+08:00",
        "paid_at": "2026-11-30T10:05:00+08:00",
        "items": [{"title": "保湿面霜", "sku": "CR-50", "quantity": 2, "unit_price": "99.50"}],
    }
    body.update(overrides)
    return body


@pytest.mark.django_db
def test_a_read_key_gets_403(org, post):
    ChannelFactory(code="tmall")
    _, read = api_key_create(actor=org.admin.user, name="bi", scopes=["read"])
    response = post(order(), raw_key=read)
    assert response.status_code == 403
    assert response.json()["detail"]
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_order_is_created_for_the_resolved_customer_then_updated_by_a_refund(post):
    ChannelFactory(code="tmall")
    known = customer_resolve(identifiers=[("phone", "13912345678")]).customer
    first = post(order())
    assert first.status_code == 200
    body = first.json()
    assert body["created"] is True
    assert (body["customer_id"], body["status"]) == (known.pk, "paid")
    stored = Order.objects.get()
    assert stored.amount == Decimal("199.00")
    assert list(stored.items.values_list("title", "quantity")) == [("保湿面霜", 2)]

    refund = post(order(refund_amount="50", items=None)).json()
    assert refund == {
        "id": stored.pk,
        "created": False,
        "customer_id": known.pk,
        "status": "partially_refunded",
    }
    stored.refresh_from_db()
    assert stored.refund_amount == Decimal("50.00")
    assert OrderItem.objects.count() == 1  # items omitted: lines kept
    assert post(order(refund_amount="199", items=[])).json()["status"] == "refunded"
    assert not OrderItem.objects.exists()  # an empty list replaces the lines
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_buyer_becomes_a_customer_from_the_channel(post):
    tmall = ChannelFactory(code="tmall")
    answer = post(order(customer={"tmall_buyer": "tb_lily"})).json()
    customer = Customer.objects.get(pk=answer["customer_id"])
    assert customer.first_channel == tmall
    assert customer.identities.get().kind == "tmall_buyer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"channel": "nowhere"}, "channel"),
        ({"external_id": ""}, "external_id"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"refund_amount": "500"}, "refund_amount"),
        ({"status": "lost"}, "status"),
        ({"paid_at": "2026-11-30T10:05:00"}, "paid_at"),
        ({"customer": {"phone": "138****1234"}}, "customer.phone"),
        ({"items": [{"quantity": 0}]}, "items[0].quantity"),
        ({"external_id": "a\x00b"}, "external_id"),
    ],
)
def test_bad_orders_get_422_naming_the_field(post, overrides, field):
    ChannelFactory(code="tmall")
    response = post(order(**overrides))
    assert response.status_code == 422, response.json()
    assert field in [e["field"] for e in response.json()["errors"]]
    assert response.json()["detail"]
    assert not Order.objects.exists()
