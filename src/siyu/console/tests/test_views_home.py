"""Log-in, the shell (navigation, language switch, log-out) and the home dashboard."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from siyu.console.tests.data import customers_for, populate
from siyu.customers.models import Relationship
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory, RelationshipFactory
from siyu.org.tests.factories import PASSWORD

HOME = reverse("console:home")
LOGIN = reverse("console:login")


def test_anonymous_home_redirects_to_login(client):
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"


def test_login_page_renders_in_chinese(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    content = response.content.decode()
    assert "登录" in content
    assert 'lang="zh-hans"' in content


def test_logging_in_leads_home(org, client):
    response = client.post(LOGIN, {"username": "staff_a", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == HOME


def test_a_wrong_password_is_refused_with_a_message(org, client):
    response = client.post(LOGIN, {"username": "staff_a", "password": "nope"})
    assert response.status_code == 200
    assert "alert-error" in response.content.decode()


def test_logout_needs_post(org, login):
    client = login(org.staff_a)
    assert client.get(reverse("console:logout")).status_code == 405
    response = client.post(reverse("console:logout"))
    assert response.status_code == 302
    assert client.get(HOME).status_code == 302


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
def test_home_renders_for_every_role(org, login, who):
    response = login(getattr(org, who)).get(HOME)
    assert response.status_code == 200


def test_a_login_without_staff_record_gets_a_note_not_an_error(db, client):
    user = get_user_model().objects.create_user("nobody", password=PASSWORD)
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    assert response.context["stats"] is None
    assert client.get(reverse("customers:list")).status_code == 404


@pytest.mark.parametrize(
    ("who", "areas"),
    [
        (
            "admin",
            [
                "customers:list",
                "leads:list",
                "tags:index",
                "segments:list",
                "campaigns:list",
                "segments:rfm",
                "content:scripts",
                "imports:list",
                "org:index",
                "core:audit",
                "events:types",
                "apikeys:list",
                "webhooks:list",
                "wecom:settings",
            ],
        ),
        (
            "manager_a",
            [
                "customers:list",
                "leads:list",
                "tags:index",
                "segments:list",
                "campaigns:list",
                "segments:rfm",
                "content:scripts",
                "imports:list",
                "org:index",
            ],
        ),
        (
            "staff_a",
            ["customers:list", "leads:list", "segments:list", "campaigns:list", "content:scripts"],
        ),
    ],
)
def test_navigation_lists_only_the_areas_the_role_may_open(org, login, who, areas):
    response = login(getattr(org, who)).get(HOME)
    links = [link.url for link in response.context["nav"]]
    assert links == [HOME, *(reverse(name) for name in areas)]
    for url in links:
        assert login(getattr(org, who)).get(url).status_code == 200


def test_django_admin_link_only_for_admins_with_the_staff_flag(org, login):
    assert reverse("admin:index") not in login(org.admin).get(HOME).content.decode()
    org.admin.user.is_staff = True
    org.admin.user.save(update_fields=["is_staff"])
    assert reverse("admin:index") in login(org.admin).get(HOME).content.decode()
    org.staff_a.user.is_staff = True
    org.staff_a.user.save(update_fields=["is_staff"])
    assert reverse("admin:index") not in login(org.staff_a).get(HOME).content.decode()


def test_current_area_is_marked(org, login):
    response = login(org.staff_a).get(reverse("customers:list"))
    current = [link.url for link in response.context["nav"] if link.current]
    assert current == [reverse("customers:list")]


def test_top_bar_names_the_user_and_role(org, login):
    org.staff_a.name = "王导购"
    org.staff_a.save(update_fields=["name"])
    content = login(org.staff_a).get(HOME).content.decode()
    assert "王导购" in content
    assert "员工" in content


def test_default_language_is_chinese_even_for_an_english_browser(org, login):
    content = login(org.staff_a).get(HOME, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content
    assert "首页" in content.decode() and "客户" in content.decode()
    assert "Customers" not in content.decode()


def test_language_switch_to_english_and_back(org, login):
    client = login(org.staff_a)
    response = client.post("/i18n/setlang/", {"language": "en", "next": HOME})
    assert response.status_code == 302
    content = client.get(HOME).content.decode()
    assert "Customers" in content and "Log out" in content
    assert "退出登录" not in content
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": HOME})
    assert "退出登录" in client.get(HOME).content.decode()


def test_dashboard_counts_the_viewers_pool(org, login):
    # given staff_a's customers: two new today, one from 20 days ago, one deleted them
    now = timezone.now()
    channel = ChannelFactory(code="douyin", name="抖音")
    CustomerFactory(owner=org.staff_a, first_channel=channel)
    CustomerFactory(owner=org.staff_a, first_channel=channel)
    old = CustomerFactory(owner=org.staff_a, first_seen_at=now - timedelta(days=20))
    RelationshipFactory(
        customer=old,
        staff=org.staff_a,
        status=Relationship.Status.REMOVED,
        removed_by=Relationship.RemovedBy.CUSTOMER,
        removed_at=now,
    )
    CustomerFactory(owner=org.staff_b)  # not staff_a's
    # when staff_a opens home
    response = login(org.staff_a).get(HOME)
    stats = response.context["stats"]
    # then the figures are staff_a's only
    assert (stats.size, stats.new_today, stats.new_30d) == (3, 2, 3)
    assert (stats.removed_today, stats.removed_30d) == (1, 1)
    assert response.context["by_channel"] == [
        {"name": "抖音", "value": 2},
        {"name": "无来源渠道", "value": 1},
    ]


def test_channel_chart_data_is_json_and_escaped(org, login):
    channel = ChannelFactory(code="evil", name="</script><script>alert(1)</script>")
    CustomerFactory(owner=org.staff_a, first_channel=channel)
    content = login(org.staff_a).get(HOME).content.decode()
    assert "<script>alert(1)</script>" not in content
    start = content.index('id="chart-by-channel"')
    payload = content[content.index(">", start) + 1 : content.index("</script>", start)]
    assert json.loads(payload) == [{"name": channel.name, "value": 1}]
    assert "vendor/echarts.min.js" in content


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(HOME)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
def test_query_count_does_not_grow_with_the_pool(org, login, who):
    populate(org, 1)
    client = login(getattr(org, who))
    small = _queries(client)
    populate(org, 10)
    customers_for(org.staff_a, 5, channel=ChannelFactory(code="jd", name="京东"))
    assert _queries(client) == small


def test_not_found_page_keeps_the_shell_for_logged_in_users(org, login):
    response = login(org.staff_a).get(reverse("core:audit"))
    content = response.content.decode()
    assert response.status_code == 404
    assert "页面不存在" in content and "退出登录" in content


def test_not_found_page_for_anonymous_visitors(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()
