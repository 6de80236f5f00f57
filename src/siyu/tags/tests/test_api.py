"""Tagging over the REST API: scopes, add/remove with history, merges, rule-tag refusal."""

import json

import pytest

from siyu.core.api_keys import api_key_create
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import CustomerFactory
from siyu.tags.models import CustomerTag, TagChange
from siyu.tags.services import tag_create
from siyu.tags.tests.factories import TagFactory, TagGroupFactory


@pytest.fixture
def key(org):
    return api_key_create(actor=org.admin.user, name="crm", scopes=["ingest"])[1]


@pytest.fixture
def add(client, key):
    def _add(customer_id, body, raw_key=key):
        return client.post(
            f"/api/v1/customers/{customer_id}/tags",
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )

    return _add


@pytest.fixture
def remove(client, key):
    def _remove(customer_id, tag_id, raw_key=key):
        return client.delete(
            f"/api/v1/customers/{customer_id}/tags/{tag_id}",
            headers={"Authorization": f"Bearer {raw_key}"},
        )

    return _remove


@pytest.mark.django_db
def test_a_read_key_gets_403_and_no_key_401(org, client, add, remove):
    customer, tag = CustomerFactory(), TagFactory()
    _, read = api_key_create(actor=org.admin.user, name="bi", scopes=["read"])
    refused = add(customer.pk, {"tag_id": tag.pk}, raw_key=read)
    assert refused.status_code == 403
    assert "ingest" in refused.json()["detail"]
    assert remove(customer.pk, tag.pk, raw_key=read).status_code == 403
    anonymous = client.delete(f"/api/v1/customers/{customer.pk}/tags/{tag.pk}")
    assert anonymous.status_code == 401
    assert not CustomerTag.objects.exists()


@pytest.mark.django_db
def test_add_and_remove_are_idempotent_and_recorded(add, remove):
    customer, tag = CustomerFactory(), TagFactory()
    first = add(customer.pk, {"tag_id": tag.pk})
    assert first.status_code == 200
    assert first.json() == {"customer_id": customer.pk, "tag_id": tag.pk, "changed": True}
    assert add(customer.pk, {"tag_id": tag.pk}).json()["changed"] is False
    link = CustomerTag.objects.get(customer=customer, tag=tag)
    assert link.source == "api"

    assert remove(customer.pk, tag.pk).json()["changed"] is True
    assert remove(customer.pk, tag.pk).json()["changed"] is False
    assert not CustomerTag.objects.exists()
    history = TagChange.objects.order_by("pk").values_list("action", "source")
    assert list(history) == [("added", "api"), ("removed", "api")]


@pytest.mark.django_db
def test_a_merged_away_customer_is_tagged_as_its_survivor(add):
    survivor, absorbed = CustomerFactory(), CustomerFactory()
    customers_merge(survivor=survivor, absorbed=[absorbed], reason="test")
    tag = TagFactory()
    assert add(absorbed.pk, {"tag_id": tag.pk}).json()["customer_id"] == survivor.pk
    assert CustomerTag.objects.get().customer_id == survivor.pk


@pytest.mark.django_db
def test_rule_tags_are_refused_with_the_reason(add, remove):
    customer = CustomerFactory()
    rule_tag = tag_create(
        group=TagGroupFactory(),
        name="冠军客户",
        rule={"attr": "rfm_group", "op": "eq", "value": "champions"},
    )
    for response in (add(customer.pk, {"tag_id": rule_tag.pk}), remove(customer.pk, rule_tag.pk)):
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "tag"
        assert "规则标签" in response.json()["detail"]  # "is a rule tag", in the site language
    assert not CustomerTag.objects.exists()


@pytest.mark.django_db
def test_unknown_ids_get_404_and_bad_bodies_422(add, remove):
    customer, tag = CustomerFactory(), TagFactory()
    assert add(999999, {"tag_id": tag.pk}).status_code == 404
    assert add(customer.pk, {"tag_id": 999999}).status_code == 404
    assert remove(customer.pk, 999999).status_code == 404
    for body, field in (({}, "tag_id"), ({"tag_id": "x"}, "tag_id"), ({"tag_id": 0}, "tag_id")):
        response = add(customer.pk, body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
