"""Event ingestion over the REST API: auth and scopes, single and batch, limits, no 500s."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.api import MAX_BODY_BYTES
from siyu.core.api_keys import api_key_create
from siyu.customers.models import Customer, Identity
from siyu.customers.tests.factories import CustomerFactory, PhoneIdentityFactory
from siyu.events.models import Event, EventType

URL = "/api/v1/events"
BATCH = "/api/v1/events/batch"


@pytest.fixture
def key(org):
    return api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])[1]


@pytest.fixture
def post(client, key):
    def _post(url, body, *, raw_key=key, header="Authorization"):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        value = f"Bearer {raw_key}" if header == "Authorization" else raw_key
        return client.post(url, data, content_type="application/json", headers={header: value})

    return _post


def event(**overrides):
    body = {
        "customer": {"phone": "13912345678"},
        "type": "viewed_material",
        "occurred_at": timezone.now().isoformat(),
        "properties": {"material": "春季新品"},
    }
    body.update(overrides)
    return body


# Auth and scopes


@pytest.mark.django_db
def test_requests_without_a_valid_key_get_401_with_a_reason(client, org, key):
    no_key = client.post(URL, json.dumps(event()), content_type="application/json")
    assert no_key.status_code == 401
    assert no_key.json() == {"detail": "missing API key"}
    for bad in ("Bearer siyu_nothere_xyz", f"Bearer {key}x", "Bearer garbage", "Basic abc"):
        response = client.post(
            URL,
            json.dumps(event()),
            content_type="application/json",
            headers={"Authorization": bad},
        )
        assert response.status_code == 401, bad
        assert response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_key_without_the_ingest_scope_gets_403(org, post):
    _, read_only = api_key_create(actor=org.admin.user, name="bi", scopes=["read"])
    response = post(URL, event(), raw_key=read_only)
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]
    assert post(BATCH, {"events": [event()]}, raw_key=read_only).status_code == 403
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_the_key_may_also_come_in_x_api_key(post, key):
    assert post(URL, event(), header="X-API-Key").status_code == 202


# One event


@pytest.mark.django_db
def test_one_event_for_a_known_customer_is_stored_against_them(org, post):
    known = PhoneIdentityFactory(value="+8613912345678").customer
    at = timezone.now() - timedelta(hours=2)
    response = post(URL, event(occurred_at=at.isoformat(), source="mini_program"))
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    stored = Event.objects.get()
    assert (stored.customer_id, stored.type, stored.source) == (
        known.pk,
        "viewed_material",
        "mini_program",
    )
    assert stored.occurred_at == at
    assert stored.properties == {"material": "春季新品"}
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_customer_is_created_through_oneid_and_the_type_registered(post):
    response = post(
        URL,
        event(customer={"email": "New@Example.com", "wechat_unionid": "o-1"}, type="checked_in"),
    )
    assert response.status_code == 202
    customer = Event.objects.get().customer
    assert set(customer.identities.values_list("kind", "value")) == {
        ("email", "new@example.com"),
        ("wechat_unionid", "o-1"),
    }
    assert EventType.objects.get(name="checked_in").label == ""


@pytest.mark.django_db
def test_a_wechat_openid_is_kept_with_its_app_id(post):
    customer = {"wechat_openid": "oABC", "wechat_appid": "wx123"}
    assert post(URL, event(customer=customer)).status_code == 202
    assert post(URL, event(customer=customer)).status_code == 202
    identity = Identity.objects.get()
    assert (identity.kind, identity.namespace, identity.value) == ("wechat_openid", "wx123", "oABC")
    assert Event.objects.filter(customer=identity.customer).count() == 2


@pytest.mark.django_db
def test_a_repeated_idempotency_key_is_accepted_and_ignored(post):
    first = post(URL, event(idempotency_key="order-1-paid"))
    again = post(URL, event(idempotency_key="order-1-paid"))
    assert first.json() == {"status": "accepted"}
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate"}
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_a_masked_phone_is_rejected_naming_the_field(post):
    response = post(URL, event(customer={"phone": "139****5678"}))
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["field"] == "customer.phone"
    assert "masked" in body["errors"][0]["reason"]
    assert not Customer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),  # no zone
        ({"occurred_at": (timezone.now() - timedelta(days=6 * 365)).isoformat()}, "occurred_at"),
        ({"occurred_at": (timezone.now() + timedelta(days=2)).isoformat()}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"type": "has spaces"}, "type"),
        ({"type": "x" * 61}, "type"),
        ({"type": 42}, "type"),
        ({"properties": {f"k{i}": i for i in range(51)}}, "properties"),
        ({"properties": {"text": "长" * 1001}}, "properties"),
        ({"properties": {f"k{i}": "x" * 900 for i in range(10)}}, "properties"),
        ({"properties": {"nul": "a\x00b"}}, "properties"),
        ({"properties": []}, "properties"),
        ({"customer": {}}, "customer"),
        ({"customer": {"phone": "12"}}, "customer.phone"),
        ({"customer": {"fax": "123"}}, "customer.fax"),
        ({"customer": {"wechat_openid": "o-1"}}, "customer"),
        ({"customer": {"wechat_appid": "wx1"}}, "customer"),
        ({"customer": "13912345678"}, "customer"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
        ({"source": "a\x00"}, "source"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_events_answer_422_with_the_field_and_reason(post, change, field):
    response = post(URL, event(**change))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["detail"]
    assert field in [e["field"] for e in body["errors"]]
    assert all(e["reason"] for e in body["errors"])
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    ["{not json", "[]", '"text"', "null", "123", '{"customer": NaN}', b"\xff\xfe", ""],
)
def test_malformed_bodies_get_a_4xx_never_a_500(post, body):
    for url in (URL, BATCH):
        response = post(url, body)
        assert 400 <= response.status_code < 500, (url, body, response.content)
        assert response.json()["detail"]


@pytest.mark.django_db
def test_a_lone_surrogate_in_properties_is_named_as_such(post):
    # Valid JSON ("\\ud800" escaped) but not encodable text: not the NaN message it once got.
    response = post(URL, event(properties={"p": "\ud800"}))
    assert response.status_code == 422, response.content
    (error,) = response.json()["errors"]
    assert error == {
        "field": "properties",
        "reason": "Value error, must not contain unpaired surrogates",
    }
    assert not Event.objects.exists()


def nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"in": value}
    return value


@pytest.mark.django_db
def test_properties_up_to_the_limits_are_stored_as_sent(post):
    # Text that looks like what the limits look for, and the deepest and longest allowed.
    properties = {
        "note": "NaN, Infinity and \\u0000 as plain text",
        "deep": nested(9),  # ten levels with the properties object itself
        "long": "长" * 1000,
    }
    response = post(URL, event(properties=properties))
    assert response.status_code == 202, response.content
    assert Event.objects.get().properties == properties


@pytest.mark.django_db
def test_properties_nested_too_deep_are_refused_naming_the_limit(post):
    response = post(URL, event(properties={"deep": nested(10)}))
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == [
        {"field": "properties", "reason": "Value error, is nested more than 10 levels deep"}
    ]


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused_with_413(post):
    body = {"events": [event()], "padding": "x" * (MAX_BODY_BYTES + 1)}
    response = post(BATCH, body)
    assert response.status_code == 413
    assert "larger" in response.json()["detail"]


# Batches


@pytest.mark.django_db
def test_a_batch_reports_each_item_and_a_bad_item_does_not_reject_the_rest(post):
    known = PhoneIdentityFactory(value="+8613900000001").customer
    items = [
        event(customer={"phone": "13900000001"}),
        event(customer={"phone": "138****0000"}),
        event(customer={"email": "fresh@example.com"}, type="joined_group"),
        event(customer={"email": "fresh@example.com"}, idempotency_key="dup"),
        event(customer={"phone": "13900000001"}, idempotency_key="dup"),
        {"type": "no_customer"},
    ]
    response = post(BATCH, {"events": items})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["invalid"]) == (3, 1, 2)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "invalid"),
        (2, "accepted"),
        (3, "accepted"),
        (4, "duplicate"),
        (5, "invalid"),
    ]
    assert body["results"][1]["errors"][0]["field"] == "customer.phone"
    assert {e["field"] for e in body["results"][5]["errors"]} >= {"customer", "occurred_at"}
    fresh = Identity.objects.get(kind="email", value="fresh@example.com").customer
    assert sorted(Event.objects.values_list("customer_id", flat=True)) == sorted(
        [known.pk, fresh.pk, fresh.pk]
    )
    assert Customer.objects.count() == 2  # one fresh customer for both of its events
    assert EventType.objects.filter(name__in=["viewed_material", "joined_group"]).count() == 2

    again = post(BATCH, {"events": [event(idempotency_key="dup")]}).json()
    assert again["results"] == [{"index": 0, "status": "duplicate", "errors": []}]


@pytest.mark.django_db
def test_a_batch_of_known_customers_costs_a_fixed_number_of_queries(
    post, django_assert_max_num_queries
):
    def batch(n: int):
        customers = [PhoneIdentityFactory(value=f"+86137{n:02d}{i:06d}").customer for i in range(n)]
        wechat = [f"u{c.pk}" for c in customers]
        Identity.objects.bulk_create(
            Identity(customer=c, kind="wechat_unionid", value=w)
            for c, w in zip(customers, wechat, strict=True)
        )
        return [
            event(
                customer={"phone": f"137{n:02d}{i:06d}", "wechat_unionid": wechat[i]},
                idempotency_key=f"k{n}-{i}",
            )
            for i in range(n)
        ]

    small, large = batch(3), batch(60)
    # key lookup, savepoint pair, idempotency keys, two identity kinds, event types (2), insert
    with django_assert_max_num_queries(11):
        assert post(BATCH, {"events": small}).json()["accepted"] == 3
    with django_assert_max_num_queries(11):
        assert post(BATCH, {"events": large}).json()["accepted"] == 60
    assert Event.objects.count() == 63
    assert Customer.objects.count() == 63


@pytest.mark.django_db
def test_events_naming_two_customers_merge_them_and_land_on_the_survivor(post):
    by_phone = PhoneIdentityFactory(value="+8613911110000").customer
    by_email = CustomerFactory()
    Identity.objects.create(customer=by_email, kind="email", value="two@example.com")
    items = [
        event(customer={"email": "two@example.com"}),
        event(customer={"phone": "13911110000", "email": "two@example.com"}),
    ]
    assert post(BATCH, {"events": items}).json()["accepted"] == 2
    survivors = set(Event.objects.values_list("customer_id", flat=True))
    assert len(survivors) == 1
    survivor = survivors.pop()
    assert survivor in {by_phone.pk, by_email.pk}
    assert Customer.objects.get(pk=survivor).merged_into_id is None


@pytest.mark.django_db
def test_batch_size_is_limited_to_1000(post):
    response = post(BATCH, {"events": [event()] * 1001})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events"
    assert not Event.objects.exists()
    assert post(BATCH, {"events": []}).status_code == 422


@pytest.mark.django_db
def test_the_openapi_spec_is_served(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/events", "/api/v1/events/batch"} <= set(spec["paths"])
    assert client.get("/api/v1/docs").status_code == 200


@pytest.mark.django_db
def test_a_batch_body_read_by_the_endpoint_is_refused_as_any_body_is(post):
    # a lone surrogate is valid JSON: the item is invalid, not the batch
    lone = '{"events": [' + json.dumps(event(properties={"p": "\ud800"})) + "]}"
    response = post(BATCH, lone)
    assert response.status_code == 200, response.content
    (result,) = response.json()["results"]
    assert (result["status"], result["errors"][0]["field"]) == ("invalid", "properties")
    # a wrong shape names the field, as ninja's own checks do
    for body, field in [
        ({"events": "x"}, "events"),
        ({"events": [1]}, "events[0]"),
        ({"other": []}, "events"),
        ([], "events"),
    ]:
        response = post(BATCH, body)
        assert response.status_code == 422, (body, response.content)
        assert response.json()["errors"][0]["field"] == field, (body, response.json())
    assert post(BATCH, "").status_code == 422
    assert post(BATCH, '{"events": [{"customer": Infinity}]}').status_code == 400
