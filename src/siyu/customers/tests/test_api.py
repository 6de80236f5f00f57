"""Customers over the REST API: scopes, reading (masking, merges, paging), upsert via OneID."""

import json

import pytest

from siyu.core.api_keys import api_key_create
from siyu.customers.models import Customer
from siyu.customers.services import customer_resolve, customers_merge
from siyu.customers.tests.factories import CustomerFactory, PhoneIdentityFactory
from siyu.org.models import Staff

URL = "/api/v1/customers"


@pytest.fixture
def keys(org):
    def make(*scopes):
        return api_key_create(actor=org.admin.user, name="-".join(scopes), scopes=list(scopes))[1]

    return {s: make(s) for s in ("read", "ingest", "admin")}


@pytest.fixture
def call(client):
    def _call(method, url, key, body=None, **params):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if method == "get":
            return client.get(url, params, headers=headers)
        return client.post(url, json.dumps(body), content_type="application/json", headers=headers)

    return _call


@pytest.mark.django_db
def test_scopes_401_and_403_with_reasons(call, keys):
    customer = PhoneIdentityFactory().customer
    assert call("get", f"{URL}/{customer.pk}", None).status_code == 401
    forbidden = call("get", f"{URL}/{customer.pk}", keys["ingest"])
    assert forbidden.status_code == 403
    assert "read" in forbidden.json()["detail"]
    body = {"identifiers": {"phone": "13912345678"}}
    refused = call("post", URL, keys["read"], body)
    assert refused.status_code == 403
    assert "ingest" in refused.json()["detail"]
    assert call("post", URL, keys["admin"], body).status_code == 200
    assert not Customer.objects.filter(pk=customer.pk, phone="").exists()


@pytest.mark.django_db
def test_phones_are_masked_unless_the_key_has_admin(call, org, keys):
    customer = PhoneIdentityFactory(value="+8613912345678").customer
    masked = call("get", f"{URL}/{customer.pk}", keys["read"]).json()
    assert masked["phone"] == "139****5678"
    assert masked["name"] == customer.name
    _, read_admin = api_key_create(actor=org.admin.user, name="bo", scopes=["read", "admin"])
    assert call("get", f"{URL}/{customer.pk}", read_admin).json()["phone"] == "+8613912345678"


@pytest.mark.django_db
def test_a_key_reading_as_a_staff_member_sees_what_they_see_in_the_console(call, org):
    mine = PhoneIdentityFactory(customer__owner=org.staff_a, value="+8613900000001").customer
    colleagues = CustomerFactory(owner=org.staff_a2)
    other_store = CustomerFactory(owner=org.staff_b)
    staff_key = api_key_create(
        actor=org.admin.user, name="导购小程序", scopes=["read", "admin"], staff=org.staff_a
    )[1]
    manager_key = api_key_create(
        actor=org.admin.user, name="门店屏", scopes=["read"], staff=org.manager_a
    )[1]

    assert [c["id"] for c in call("get", URL, staff_key).json()["items"]] == [mine.pk]
    assert call("get", f"{URL}/{colleagues.pk}", staff_key).status_code == 404
    assert call("get", f"{URL}/{other_store.pk}", manager_key).status_code == 404
    listed = {c["id"] for c in call("get", URL, manager_key).json()["items"]}
    assert listed == {mine.pk, colleagues.pk}
    # admin scope, but staff_a sees phones masked in the console: masked here too
    assert call("get", f"{URL}/{mine.pk}", staff_key).json()["phone"] == "139****0001"

    Staff.objects.filter(pk=org.staff_a.pk).update(status=Staff.Status.RESIGNED)
    assert call("get", f"{URL}/{mine.pk}", staff_key).status_code == 404
    assert call("get", URL, staff_key).json()["items"] == []


@pytest.mark.django_db
def test_a_merged_away_id_answers_with_the_survivor(call, keys):
    survivor = PhoneIdentityFactory().customer
    absorbed = PhoneIdentityFactory().customer
    customers_merge(survivor=survivor, absorbed=[absorbed], reason="test")
    body = call("get", f"{URL}/{absorbed.pk}", keys["read"]).json()
    assert body["id"] == survivor.pk
    assert body["merged_from"] == absorbed.pk
    assert call("get", f"{URL}/{survivor.pk}", keys["read"]).json()["merged_from"] is None
    missing = call("get", f"{URL}/999999", keys["read"])
    assert missing.status_code == 404
    assert missing.json()["detail"]


@pytest.mark.django_db
def test_list_searches_filters_by_phone_and_pages_by_cursor(call, keys):
    customers = [PhoneIdentityFactory().customer for _ in range(5)]
    first = call("get", URL, keys["read"], limit=2).json()
    assert [c["id"] for c in first["items"]] == [customers[4].pk, customers[3].pk]
    second = call("get", URL, keys["read"], limit=2, cursor=first["next_cursor"]).json()
    assert [c["id"] for c in second["items"]] == [customers[2].pk, customers[1].pk]
    last = call("get", URL, keys["read"], limit=2, cursor=second["next_cursor"]).json()
    assert [c["id"] for c in last["items"]] == [customers[0].pk]
    assert last["next_cursor"] is None

    phone = customers[2].phone
    found = call("get", URL, keys["read"], phone=phone[3:]).json()["items"]
    assert [c["id"] for c in found] == [customers[2].pk]
    by_name = call("get", URL, keys["read"], q=customers[1].name).json()["items"]
    assert customers[1].pk in [c["id"] for c in by_name]


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(call, keys, django_assert_num_queries):
    for _ in range(3):
        PhoneIdentityFactory()
    call("get", URL, keys["read"])  # warm the key's last-used stamp
    with django_assert_num_queries(2):
        small = call("get", URL, keys["read"], limit=1)
    for _ in range(10):
        PhoneIdentityFactory()
    with django_assert_num_queries(2):
        big = call("get", URL, keys["read"], limit=50)
    assert len(small.json()["items"]) == 1
    assert len(big.json()["items"]) == 13


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": 10**20}, "cursor"),
        ({"phone": "138****1234"}, "phone"),
        ({"q": "x" * 101}, "q"),
    ],
)
def test_bad_list_parameters_get_422_naming_the_field(call, keys, params, field):
    response = call("get", URL, keys["read"], **params)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.django_db
def test_upsert_creates_then_matches_and_fills_only_empty_fields(call, keys):
    body = {"identifiers": {"phone": "13912345678"}, "name": "李雷", "gender": "男"}
    created = call("post", URL, keys["ingest"], body)
    assert created.status_code == 200
    assert created.json()["status"] == "created"
    customer = Customer.objects.get(pk=created.json()["id"])
    assert (customer.name, customer.gender, customer.phone) == ("李雷", "m", "+8613912345678")

    again = {
        "identifiers": {"phone": "+86 139 1234 5678", "email": "Li@Example.com"},
        "name": "韩梅梅",
        "city": "杭州",
    }
    matched = call("post", URL, keys["ingest"], again).json()
    assert matched == {"id": customer.pk, "status": "matched", "merged_ids": []}
    customer.refresh_from_db()
    assert (customer.name, customer.city) == ("李雷", "杭州")
    assert customer.identities.filter(kind="email", value="li@example.com").exists()


@pytest.mark.django_db
def test_upsert_merges_customers_that_the_identifiers_show_to_be_one(call, keys):
    older = customer_resolve(identifiers=[("phone", "13912345678")]).customer
    newer = customer_resolve(identifiers=[("email", "a@example.com")]).customer
    body = {"identifiers": {"phone": "13912345678", "email": "a@example.com"}}
    answer = call("post", URL, keys["ingest"], body).json()
    assert answer == {"id": older.pk, "status": "merged", "merged_ids": [newer.pk]}
    newer.refresh_from_db()
    assert newer.merged_into_id == older.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identifiers": {}}, "identifiers"),
        ({"identifiers": {"phone": "138****1234"}}, "identifiers.phone"),
        ({"identifiers": {"phone": "13912345678"}, "gender": "x"}, "gender"),
        ({"identifiers": {"phone": "13912345678"}, "birthday": "1990-13-01"}, "birthday"),
        ({"identifiers": {"phone": "13912345678"}, "name": "a\x00b"}, "name"),
        ({"identifiers": {"phone": "13912345678"}, "city": "c" * 31}, "city"),
        ({"identifiers": {"phone": "13912345678"}, "vip": True}, "vip"),
    ],
)
def test_bad_upserts_get_422_naming_the_field(call, keys, body, field):
    response = call("post", URL, keys["ingest"], body)
    assert response.status_code == 422, response.json()
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not Customer.objects.exists()
