"""The audit log page: admins only, filters, keyset pages, bad input."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from siyu.core.audit import audit_record
from siyu.core.models import AuditLog

URL = reverse("core:audit")


def record(actor, action=AuditLog.Action.REVEAL, target_id=1, summary="revealed phone"):
    return audit_record(
        actor=actor,
        action=action,
        target_type="customers.customer",
        target_id=target_id,
        summary=summary,
    )


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


@pytest.mark.parametrize("who", ["manager_a", "staff_a"])
def test_non_admins_get_404(org, login, who):
    assert login(getattr(org, who)).get(URL).status_code == 404


def test_admin_sees_the_records_with_links_to_customers(org, login):
    record(org.staff_a.user, target_id=42)
    response = login(org.admin).get(URL)
    content = response.content.decode()
    assert response.status_code == 200
    assert "staff_a" in content
    assert reverse("customers:detail", args=[42]) in content


def test_filters_by_action_actor_and_target(org, login):
    # given records by two actors about two customers
    one = record(org.staff_a.user, target_id=1)
    two = record(org.staff_b.user, action=AuditLog.Action.VIEW_PII, target_id=2)
    client = login(org.admin)

    def listed(params):
        return {e.pk for e in client.get(URL, params).context["page"].items}

    assert listed({"action": "view_pii"}) == {two.pk}
    assert listed({"actor": org.staff_a.user.pk}) == {one.pk}
    assert listed({"target": "customers.customer:2"}) == {two.pk}
    assert listed({"target": "customers.customer"}) == {one.pk, two.pk}


@pytest.mark.parametrize(
    "params",
    [
        {"action": "nonsense"},
        {"actor": "abc"},
        {"actor": "999999"},
        {"target": "x" * 10_000},
        {"target": "' OR 1=1 --"},
        {"target": "<script>alert(1)</script>"},
        {"after": "abc"},
        {"before": "-1"},
    ],
)
def test_bad_filters_get_a_clear_page_never_a_server_error(org, login, params):
    record(org.staff_a.user)
    response = login(org.admin).get(URL, params)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_summaries_are_rendered_escaped(org, login):
    record(org.staff_a.user, summary="<img src=x onerror=alert(1)>")
    content = login(org.admin).get(URL).content.decode()
    assert "<img src=x" not in content
    assert "&lt;img src=x" in content


@override_settings(SIYU_PAGE_SIZE=2)
def test_keyset_pages(org, login):
    made = [record(org.staff_a.user, target_id=i) for i in range(5)]
    client = login(org.admin)
    first = client.get(URL).context["page"]
    assert [e.pk for e in first.items] == [made[4].pk, made[3].pk]
    older = client.get(URL, {"after": first.next_cursor}).context["page"]
    assert [e.pk for e in older.items] == [made[2].pk, made[1].pk]


def test_htmx_filter_renders_only_the_results(org, login):
    record(org.staff_a.user)
    response = login(org.admin).get(URL, {"action": "reveal"}, headers={"HX-Request": "true"})
    assert response.templates[0].name == "core/_audit_results.html"
    assert "<html" not in response.content.decode()


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_the_log(org, login):
    record(org.staff_a.user)
    client = login(org.admin)
    small = _queries(client)
    for i in range(30):
        record((org.staff_a, org.staff_b, org.manager_a)[i % 3].user, target_id=i)
    assert _queries(client) == small
