"""The OpenAPI spec fuzzed with schemathesis (bounded examples): no 5xx, every 4xx has a reason."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from siyu.api import api
from siyu.core.api_keys import api_key_create
from siyu.wsgi import application

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
schema.app = application  # requests go through Django in-process, inside the test's transaction


@pytest.fixture
def keep_connection():
    """Like Django's test client: a request must not close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth(org, keep_connection):
    _, raw_key = api_key_create(
        actor=org.admin.user, name="fuzz", scopes=["ingest", "read", "admin"]
    )
    return {"Authorization": f"Bearer {raw_key}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_every_refusal_has_a_reason(case, auth):
    response = case.call(headers=auth)
    assert response.status_code < 500, response.text
    if response.status_code == 405:  # a method the path lacks: the reason is the Allow header
        assert "allow" in {name.lower() for name in response.headers}
    elif response.status_code >= 400:
        assert response.json()["detail"]
