"""The organisation page: admins see every store, managers their own, staff nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.org.models import Staff
from siyu.org.tests.factories import StaffFactory, StoreFactory

URL = reverse("org:index")


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302


@pytest.mark.parametrize("who", ["staff_a", "staff_b"])
def test_staff_get_404(org, login, who):
    assert login(getattr(org, who)).get(URL).status_code == 404


def test_admin_sees_all_stores_and_staff(org, login):
    org.staff_b.wecom_userid = "wx_zhao"
    org.staff_b.save(update_fields=["wecom_userid"])
    response = login(org.admin).get(URL)
    content = response.content.decode()
    assert response.status_code == 200
    assert "静安店" in content and "徐汇店" in content
    assert "wx_zhao" in content
    assert org.staff_b.nickname in content
    assert set(response.context["staff"]) == set(Staff.objects.all())


def test_manager_sees_only_their_store(org, login):
    response = login(org.manager_a).get(URL)
    assert response.status_code == 200
    assert list(response.context["stores"]) == [org.store_a]
    assert set(response.context["staff"]) == {org.manager_a, org.staff_a, org.staff_a2}
    assert "徐汇店" not in response.content.decode()


def test_staff_names_are_escaped(org, login):
    StaffFactory(store=org.store_a, name="<script>x</script>")
    content = login(org.admin).get(URL).content.decode()
    assert "<script>x</script>" not in content


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["admin", "manager_a"])
def test_query_count_does_not_grow_with_the_organisation(org, login, who):
    client = login(getattr(org, who))
    small = _queries(client)
    for _ in range(10):
        store = StoreFactory()
        StaffFactory(store=store)
        StaffFactory(store=org.store_a)
    assert _queries(client) == small
