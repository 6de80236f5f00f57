"""The customer list page: scope, masking, search, filters, pagination, bad input."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from siyu.console.tests.data import customers_for, populate
from siyu.customers.models import Customer
from siyu.customers.tests.factories import (
    ChannelFactory,
    CustomerFactory,
    PhoneIdentityFactory,
    RelationshipFactory,
)

URL = reverse("customers:list")


@pytest.fixture
def pool(org):
    """One customer per staff member of each store, each with a known phone."""
    a = CustomerFactory(name="王小明", owner=org.staff_a)
    PhoneIdentityFactory(customer=a, value="+8613812341234")
    a2 = CustomerFactory(name="李四", owner=org.staff_a2)
    PhoneIdentityFactory(customer=a2, value="+8613900002222")
    b = CustomerFactory(name="赵六", owner=org.staff_b)
    PhoneIdentityFactory(customer=b, value="+8613700005678")
    return {"a": a, "a2": a2, "b": b}


def names(response) -> set[str]:
    """The pool's names listed in the results table (the search box may echo a name)."""
    page = response.context["page"]
    listed = {c.name for c in page.items} if page else set()
    table = response.content.decode().split('id="customer-results"')[-1]
    assert all(name in table for name in listed)  # what the page got is what it shows
    return listed & {"王小明", "李四", "赵六"}


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


def test_anonymous_htmx_request_is_told_to_load_the_login_page(client):
    response = client.get(URL, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("console:login")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", {"王小明", "李四", "赵六"}),
        ("manager_a", {"王小明", "李四"}),
        ("manager_b", {"赵六"}),
        ("staff_a", {"王小明"}),
        ("staff_b", {"赵六"}),
    ],
)
def test_list_shows_only_the_viewers_customers(org, pool, login, who, expected):
    client = login(getattr(org, who))
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response) == expected


def test_staff_sees_a_customer_they_follow_but_do_not_own(org, pool, login):
    # given staff_a follows staff_b's customer
    RelationshipFactory(customer=pool["b"], staff=org.staff_a)
    # when staff_a lists customers
    response = login(org.staff_a).get(URL)
    # then it is listed
    assert names(response) == {"王小明", "赵六"}


def test_phones_are_masked_for_staff_without_pii_permission(org, pool, login):
    response = login(org.staff_a).get(URL)
    content = response.content.decode()
    assert "138****1234" in content
    assert "13812341234" not in content


def test_phones_are_shown_in_full_to_admins_and_permitted_staff(org, pool, login):
    response = login(org.admin).get(URL)
    assert "+8613812341234" in response.content.decode()
    # given a staff member with the permission
    org.staff_a.can_view_pii = True
    org.staff_a.save(update_fields=["can_view_pii"])
    response = login(org.staff_a).get(URL)
    assert "+8613812341234" in response.content.decode()


@pytest.mark.parametrize("q", ["王小明", "王", "wangxiaoming", "wxm", "13812341234", "1234"])
def test_search_finds_by_name_pinyin_initials_phone_and_tail(org, pool, login, q):
    response = login(org.admin).get(URL, {"q": q})
    assert response.status_code == 200
    assert names(response) == {"王小明"}


@pytest.mark.parametrize("q", ["赵六", "13700005678", "5678", "zl"])
def test_staff_cannot_find_another_staffs_customer(org, pool, login, q):
    response = login(org.staff_a).get(URL, {"q": q})
    assert response.status_code == 200
    assert names(response) == set()


def test_manager_searches_within_their_store(org, pool, login):
    client = login(org.manager_a)
    assert names(client.get(URL, {"q": "李四"})) == {"李四"}
    assert names(client.get(URL, {"q": "13700005678"})) == set()


def test_filters_by_owner_store_channel_and_stage(org, pool, login):
    # given a channel and a stage on one customer
    channel = ChannelFactory(code="tmall", name="天猫")
    Customer.objects.filter(pk=pool["a2"].pk).update(first_channel=channel, stage="member")
    client = login(org.admin)
    # then each filter narrows the list
    assert names(client.get(URL, {"owner": org.staff_a.pk})) == {"王小明"}
    assert names(client.get(URL, {"store": org.store_b.pk})) == {"赵六"}
    assert names(client.get(URL, {"channel": channel.pk})) == {"李四"}
    assert names(client.get(URL, {"stage": "member"})) == {"李四"}


def test_filter_options_are_limited_to_the_viewers_scope(org, pool, login):
    response = login(org.staff_a).get(URL)
    owner_choices = dict(response.context["form"].fields["owner"].choices)
    store_choices = dict(response.context["form"].fields["store"].choices)
    assert set(owner_choices) == {"", org.staff_a.pk}
    assert set(store_choices) == {"", org.store_a.pk}


def test_filtering_by_an_owner_outside_the_scope_is_reported_and_ignored(org, pool, login):
    response = login(org.staff_a).get(URL, {"owner": org.staff_b.pk})
    assert response.status_code == 200
    assert "alert-error" in response.content.decode()
    assert names(response) == {"王小明"}


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"store": "abc"},
        {"owner": "1; DROP TABLE customers_customer"},
        {"channel": "-1"},
        {"stage": "nonsense"},
        {"after": "xyz"},
        {"before": "1e9"},
        {"after": "-5"},
        {"after": "99999999999999999999999"},
        {"q": "' OR 1=1 --"},
        {"q": "%_\\"},
        {"q": "<script>alert(1)</script>"},
        {"q": "abc\x00def"},
    ],
)
def test_bad_input_gets_a_clear_page_never_a_server_error(org, pool, login, params):
    response = login(org.staff_a).get(URL, params)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert "赵六" not in response.content.decode()


def test_sql_metacharacters_match_nothing_rather_than_everything(org, pool, login):
    response = login(org.admin).get(URL, {"q": "' OR 1=1 --"})
    assert names(response) == set()


def test_a_very_long_search_is_refused_with_a_message(org, pool, login):
    response = login(org.admin).get(URL, {"q": "张" * 10_000})
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "100" in response.content.decode()  # the message names the limit
    assert names(response) == set()


def test_invalid_filter_values_are_reported(org, pool, login):
    response = login(org.admin).get(URL, {"store": "abc", "stage": "nonsense"})
    content = response.content.decode()
    assert "alert-error" in content
    assert names(response) == {"王小明", "李四", "赵六"}  # the bad filters are left out


def test_customer_names_are_rendered_escaped(org, login):
    CustomerFactory(name="<script>alert(1)</script>", owner=org.staff_a)
    response = login(org.staff_a).get(URL)
    content = response.content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_a_name_with_sql_metacharacters_is_found_by_its_prefix(org, login):
    CustomerFactory(name="O'Brien; --", owner=org.staff_a)
    response = login(org.staff_a).get(URL, {"q": "O'Brien"})
    assert "O&#x27;Brien; --" in response.content.decode()


def test_shows_chinese_labels_by_default(org, pool, login):
    response = login(org.admin).get(URL)
    content = response.content.decode()
    assert "首次来源渠道" in content or "来源渠道" in content
    assert "生命周期阶段" in content


@override_settings(SIYU_PAGE_SIZE=2)
def test_keyset_pages_walk_older_and_back_newer(org, login):
    # given five customers, newest last
    made = [CustomerFactory(name=f"客户{i}", owner=org.staff_a) for i in range(5)]
    client = login(org.staff_a)
    # when the first page is shown
    first = client.get(URL)
    assert [c.pk for c in first.context["page"].items] == [made[4].pk, made[3].pk]
    # then "older" leads to the next two, and "newer" back
    older = client.get(URL, {"after": first.context["page"].next_cursor})
    assert [c.pk for c in older.context["page"].items] == [made[2].pk, made[1].pk]
    assert f"after={made[1].pk}" in older.content.decode()
    newer = client.get(URL, {"before": older.context["page"].prev_cursor})
    assert [c.pk for c in newer.context["page"].items] == [made[4].pk, made[3].pk]


@override_settings(SIYU_PAGE_SIZE=2)
def test_pager_links_keep_the_search(org, login):
    for i in range(3):
        CustomerFactory(name=f"王{i}", owner=org.staff_a)
    response = login(org.staff_a).get(URL, {"q": "王"})
    assert "q=%E7%8E%8B" in response.content.decode()


def test_htmx_search_renders_only_the_results(org, pool, login):
    response = login(org.admin).get(URL, {"q": "王"}, headers={"HX-Request": "true"})
    content = response.content.decode()
    assert response.status_code == 200
    assert response.templates[0].name == "customers/_results.html"
    assert "<html" not in content
    assert "王小明" in content
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_full_page(org, pool, login):
    response = login(org.admin).get(
        URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


def test_page_does_not_count_the_whole_table(org, pool, login, django_assert_max_num_queries):
    client = login(org.admin)
    with CaptureQueriesContext(connection) as ctx:
        client.get(URL)
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)


def _queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
@pytest.mark.parametrize("params", [{}, {"q": "张"}, {"q": "1234", "stage": "lead"}])
def test_query_count_does_not_grow_with_the_pool(org, login, who, params):
    # given a small pool
    populate(org, 1)
    client = login(getattr(org, who))
    small = _queries(client, params)
    # when the pool grows tenfold (and the extra staff the filters list)
    populate(org, 10)
    customers_for(org.staff_a, 5, channel=ChannelFactory(code="jd", name="京东"))
    large = _queries(client, params)
    # then the page costs the same number of queries
    assert large == small


def test_filters_by_rfm_scores_group_and_super_user(org, pool, login):
    # given scored customers (the layer pages link here with these filters)
    Customer.objects.filter(pk=pool["a"].pk).update(
        rfm_r=5, rfm_f=3, rfm_group="potential_loyalists", is_super_user=True
    )
    Customer.objects.filter(pk=pool["a2"].pk).update(rfm_r=5, rfm_f=1, rfm_group="new_customers")
    Customer.objects.filter(pk=pool["b"].pk).update(rfm_r=2, rfm_f=3, rfm_group="at_risk")
    client = login(org.admin)
    # then each filter narrows the list, and they combine
    assert names(client.get(URL, {"rfm_r": 5})) == {"王小明", "李四"}
    assert names(client.get(URL, {"rfm_r": 5, "rfm_f": 3})) == {"王小明"}
    assert names(client.get(URL, {"rfm_f": 3})) == {"王小明", "赵六"}
    assert names(client.get(URL, {"rfm_group": "at_risk"})) == {"赵六"}
    assert names(client.get(URL, {"is_super_user": "1"})) == {"王小明"}
    assert names(client.get(URL, {"is_super_user": "0"})) == {"李四", "赵六"}
    # and a manager's filtered list stays in their store
    assert names(login(org.manager_b).get(URL, {"rfm_f": 3})) == {"赵六"}


@pytest.mark.parametrize(
    "params", [{"rfm_r": "6"}, {"rfm_f": "x"}, {"rfm_group": "nonsense"}, {"is_super_user": "2"}]
)
def test_bad_rfm_filters_are_reported_and_left_out(org, pool, login, params):
    response = login(org.admin).get(URL, params)
    assert response.status_code == 200
    assert "alert-error" in response.content.decode()
    assert names(response) == {"王小明", "李四", "赵六"}
