"""API keys: stored hashed, shown once, scoped, revocable, last use recorded sparingly; the
console pages are for admins only."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from siyu.core.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from siyu.core.errors import DomainError
from siyu.core.models import ApiKey, AuditLog
from siyu.org.models import Staff

URL = "/api/v1/events"


def ingest(client, raw_key):
    body = {
        "customer": {"phone": "13912345678"},
        "type": "visited",
        "occurred_at": timezone.now().isoformat(),
    }
    return client.post(
        URL,
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}"},
    )


@pytest.mark.django_db
def test_a_key_is_stored_as_a_hash_never_as_text(org):
    key, raw_key = api_key_create(actor=org.admin.user, name="shop", scopes=["ingest", "read"])
    assert raw_key.startswith(f"siyu_{key.prefix}_")
    assert len(raw_key) > 40
    stored = ApiKey.objects.get()
    assert stored.secret_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    secret = raw_key.rsplit("_", 1)[-1]
    assert all(secret not in str(value) for value in ApiKey.objects.values().get().values())
    assert stored.scopes == ["ingest", "read"]
    assert api_key_authenticate(raw_key) == stored
    assert api_key_authenticate(raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None


@pytest.mark.django_db
def test_scopes_must_be_known_and_present(org):
    for scopes in ([], ["write"]):
        with pytest.raises(DomainError):
            api_key_create(actor=org.admin.user, name="x", scopes=scopes)


@pytest.mark.django_db
def test_a_revoked_key_gets_401(client, org):
    key, raw_key = api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])
    assert ingest(client, raw_key).status_code == 202
    api_key_revoke(actor=org.admin.user, key=key)
    response = ingest(client, raw_key)
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked API key"}


@pytest.mark.django_db
def test_a_key_with_a_nul_character_gets_401_not_a_500(org):
    api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])
    assert api_key_authenticate("siyu_a\x00b_secret") is None


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(client, org, django_assert_num_queries):
    key, raw_key = api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])
    assert key.last_used_at is None
    api_key_authenticate(raw_key)
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only: no write within the minute
        api_key_authenticate(raw_key)
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=first - timedelta(minutes=2))
    api_key_authenticate(raw_key)
    assert ApiKey.objects.get().last_used_at > first - timedelta(minutes=1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scopes", "status"),
    [(["ingest"], 202), (["read"], 403), (["admin"], 403), (["read", "admin"], 403)],
)
def test_the_ingest_endpoint_needs_the_ingest_scope(client, org, scopes, status):
    _, raw_key = api_key_create(actor=org.admin.user, name="k", scopes=scopes)
    assert ingest(client, raw_key).status_code == status


# Console pages


@pytest.mark.django_db
def test_only_admins_see_the_key_pages(org, login):
    key, _ = api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])
    for staff in (org.manager_a, org.staff_a):
        client = login(staff)
        assert client.get("/settings/api-keys/").status_code == 404
        assert client.get("/settings/api-keys/new/").status_code == 404
        assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 404
    assert ApiKey.objects.get().revoked_at is None
    client = login(org.admin)
    page = client.get("/settings/api-keys/")
    assert page.status_code == 200
    assert f"siyu_{key.prefix}_" in page.content.decode()
    assert 'href="/settings/api-keys/"' in client.get("/").content.decode()


@pytest.mark.django_db
def test_creating_a_key_shows_it_once_and_audits_it(org, login):
    client = login(org.admin)
    response = client.post("/settings/api-keys/new/", {"name": "小程序", "scopes": ["ingest"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get()
    html = response.content.decode()
    raw_key = html.split('id="api-key-value" value="')[1].split('"')[0]
    assert api_key_authenticate(raw_key) == key
    listing = client.get("/settings/api-keys/").content.decode()
    assert "小程序" in listing
    assert raw_key not in listing
    log = AuditLog.objects.get(action=AuditLog.Action.CREATE)
    assert (log.actor, log.target_id) == (org.admin.user, str(key.pk))


@pytest.mark.django_db
def test_a_key_can_be_created_to_read_as_an_active_staff_member(org, login):
    client = login(org.admin)
    form = client.get("/settings/api-keys/new/").content.decode()
    assert f"{org.staff_a.name} · {org.store_a.name}" in form  # names, not personas

    client.post(
        "/settings/api-keys/new/",
        {"name": "导购小程序", "scopes": ["read"], "staff": org.staff_a.pk},
    )

    key = ApiKey.objects.get()
    assert key.staff == org.staff_a
    assert org.staff_a.name in client.get("/settings/api-keys/").content.decode()
    log = AuditLog.objects.get(action=AuditLog.Action.CREATE)
    assert log.detail["reads_as"] == org.staff_a.name
    Staff.objects.filter(pk=org.staff_b.pk).update(status=Staff.Status.RESIGNED)
    refused = client.post(
        "/settings/api-keys/new/", {"name": "x", "scopes": ["read"], "staff": org.staff_b.pk}
    )
    assert refused.status_code == 400 and ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_a_key_form_with_errors_answers_400(org, login):
    client = login(org.admin)
    response = client.post("/settings/api-keys/new/", {"name": "", "scopes": ["root"]})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_revoking_from_the_console_is_audited(org, login, client):
    key, raw_key = api_key_create(actor=org.admin.user, name="shop", scopes=["ingest"])
    admin = login(org.admin)
    response = admin.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    assert ApiKey.objects.get().revoked_at is not None
    assert AuditLog.objects.filter(action=AuditLog.Action.REVOKE, target_id=str(key.pk)).exists()
    assert admin.post("/settings/api-keys/999999/revoke/").status_code == 404
    admin.logout()
    assert ingest(client, raw_key).status_code == 401


@pytest.mark.django_db
def test_the_key_list_costs_the_same_queries_for_few_or_many_keys(
    org, login, django_assert_num_queries
):
    client = login(org.admin)
    api_key_create(actor=org.admin.user, name="one", scopes=["ingest"])
    with CaptureQueriesContext(connection) as few:
        assert client.get("/settings/api-keys/").status_code == 200
    for n in range(15):
        key, _ = api_key_create(actor=org.manager_a.user, name=f"k{n}", scopes=["read"])
        if n % 2:
            api_key_revoke(actor=org.admin.user, key=key)
    with django_assert_num_queries(len(few)):
        page = client.get("/settings/api-keys/")
    assert page.content.decode().count('id="api-key-') == 16
