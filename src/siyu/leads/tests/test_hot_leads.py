from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from siyu.customers.models import Relationship
from siyu.customers.tests.factories import CustomerFactory, RelationshipFactory
from siyu.events.models import Event, EventType
from siyu.leads.selectors import hot_leads

LIST = reverse("leads:list")


def events(customer, type_: str, *, days_ago: float, n: int = 1) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    Event.objects.bulk_create(
        Event(customer=customer, type=type_, occurred_at=at) for _ in range(n)
    )


def ranked(staff_id: int, **kwargs) -> list[str]:
    return [lead.customer.name for lead in hot_leads(staff_id=staff_id, **kwargs).leads]


def test_a_recent_single_view_outranks_an_old_burst(org):
    old_burst = CustomerFactory(owner=org.staff_a, name="老热度")
    fresh = CustomerFactory(owner=org.staff_a, name="新热度")
    # 5 views 12 days ago: 5 · 3 · 0.5^4 ≈ 0.94; one view an hour ago ≈ 3 · 0.99
    events(old_burst, "material_viewed", days_ago=12, n=5)
    events(fresh, "material_viewed", days_ago=1 / 24)

    page = hot_leads(staff_id=org.staff_a.pk)

    assert [lead.customer.name for lead in page.leads] == ["新热度", "老热度"]
    assert page.leads[0].score == pytest.approx(3 * 0.5 ** (1 / 24 / 3), rel=1e-3)
    assert page.leads[1].score == pytest.approx(5 * 3 * 0.5**4, rel=1e-3)
    assert page.leads[1].events == 5


def test_weights_by_type_unknown_types_count_one_and_old_events_drop_out(org):
    paid = CustomerFactory(owner=org.staff_a, name="下单")
    odd = CustomerFactory(owner=org.staff_a, name="未知类型")
    stale = CustomerFactory(owner=org.staff_a, name="一月前")
    events(paid, "order_paid", days_ago=0.01)
    events(odd, "something_new", days_ago=0.01, n=2)
    events(stale, "order_paid", days_ago=31)

    page = hot_leads(staff_id=org.staff_a.pk)

    assert [lead.customer.name for lead in page.leads] == ["下单", "未知类型"]
    assert page.leads[1].score == pytest.approx(2.0, rel=1e-2)
    assert page.leads[1].top_type == "something_new"


def test_half_life_setting_changes_the_ranking(org, settings):
    burst = CustomerFactory(owner=org.staff_a, name="上周多次")
    single = CustomerFactory(owner=org.staff_a, name="今天一次")
    events(burst, "material_viewed", days_ago=6, n=3)
    events(single, "material_viewed", days_ago=0.01)

    assert ranked(org.staff_a.pk) == ["今天一次", "上周多次"]  # 3 · 0.25 < 1
    settings.SIYU_LEADS_HALF_LIFE_DAYS = 30
    assert ranked(org.staff_a.pk) == ["上周多次", "今天一次"]  # 3 · 0.87 > 1


def test_top_event_is_what_added_most(org):
    customer = CustomerFactory(owner=org.staff_a)
    EventType.objects.update_or_create(name="material_viewed", defaults={"label": "看了素材"})
    events(customer, "material_viewed", days_ago=0.5, n=3)
    events(customer, "joined_group", days_ago=0.5, n=1)

    (lead,) = hot_leads(staff_id=org.staff_a.pk).leads

    assert (lead.top_type, lead.top_label, lead.top_count, lead.events) == (
        "material_viewed",
        "看了素材",
        3,
        4,
    )


def test_scope_is_owned_plus_active_friends_only(org):
    owned = CustomerFactory(owner=org.staff_a, name="自己的")
    friend = CustomerFactory(owner=org.staff_b, name="好友")
    removed = CustomerFactory(owner=org.staff_b, name="已删好友")
    other = CustomerFactory(owner=org.staff_a2, name="同事的")
    RelationshipFactory(customer=friend, staff=org.staff_a)
    RelationshipFactory(
        customer=removed,
        staff=org.staff_a,
        status=Relationship.Status.REMOVED,
        removed_at=timezone.now(),
    )
    for customer in (owned, friend, removed, other):
        events(customer, "material_viewed", days_ago=1)

    assert sorted(ranked(org.staff_a.pk)) == ["好友", "自己的"]
    assert sorted(ranked(org.staff_b.pk)) == sorted(["好友", "已删好友"])  # owner keeps both


def test_pages_are_sliced_in_the_database(org):
    customers = [CustomerFactory(owner=org.staff_a, name=f"客{i}") for i in range(5)]
    for i, customer in enumerate(customers):
        events(customer, "material_viewed", days_ago=i + 0.5)

    first = hot_leads(staff_id=org.staff_a.pk, size=2)
    third = hot_leads(staff_id=org.staff_a.pk, size=2, page=3)

    assert [lead.customer.name for lead in first.leads] == ["客0", "客1"]
    assert first.has_next
    assert [lead.customer.name for lead in third.leads] == ["客4"]
    assert not third.has_next and third.offset == 4


# The page


def test_staff_sees_their_own_leads_with_the_formula(org, login):
    mine = CustomerFactory(owner=org.staff_a, name="我的客户", phone="+8613812341234")
    theirs = CustomerFactory(owner=org.staff_a2, name="别人的客户")
    events(mine, "material_viewed", days_ago=0.1)
    events(theirs, "material_viewed", days_ago=0.1)

    response = login(org.staff_a).get(LIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert "我的客户" in html and "别人的客户" not in html
    assert "138****1234" in html
    assert 'id="lead-formula"' in html
    assert reverse("customers:detail", args=[mine.pk]) in html


def test_staff_cannot_open_a_colleagues_leads(org, login):
    assert login(org.staff_a).get(LIST, {"staff": org.staff_a2.pk}).status_code == 404


def test_manager_picks_staff_of_their_store_only(org, login):
    customer = CustomerFactory(owner=org.staff_a2, name="店员二的客户")
    events(customer, "order_paid", days_ago=1)
    client = login(org.manager_a)

    response = client.get(LIST, {"staff": org.staff_a2.pk})

    assert response.status_code == 200
    assert "店员二的客户" in response.content.decode()
    assert client.get(LIST, {"staff": org.staff_b.pk}).status_code == 404
    assert login(org.admin).get(LIST, {"staff": org.staff_b.pk}).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"staff": "abc"},
        {"staff": "99999999999999999999"},
        {"page": "0"},
        {"page": "-2"},
        {"page": "x"},
        {"page": "1" + "0" * 30},
    ],
)
def test_bad_parameters_are_a_400_with_the_reason(org, login, query):
    response = login(org.staff_a).get(LIST, query)
    assert response.status_code == 400
    assert "必须是正整数" in response.content.decode()


def test_page_query_count_is_flat(org, login, django_assert_num_queries):
    client = login(org.manager_a)

    def add(n: int) -> None:
        for _ in range(n):
            customer = CustomerFactory(owner=org.staff_a)
            events(customer, "material_viewed", days_ago=1, n=2)
            events(customer, "joined_group", days_ago=2)

    add(2)
    client.get(LIST, {"staff": org.staff_a.pk})
    # session, user, viewer staff, the staff picker, scores, customers, per-type scores, labels
    with django_assert_num_queries(8):
        assert client.get(LIST, {"staff": org.staff_a.pk}).status_code == 200
    add(15)
    with django_assert_num_queries(8):
        response = client.get(LIST, {"staff": org.staff_a.pk})
    assert len(response.context["result"].leads) == 17


def test_page_speaks_chinese_by_default(org, login):
    html = login(org.staff_a).get(LIST).content.decode()
    assert "热度线索" in html
    assert "0.5^(距今天数 ÷ 3)" in html


def test_admin_without_staff_record_picks_someone_first(db, client, org):
    customer = CustomerFactory(owner=org.staff_b, name="徐汇客户")
    events(customer, "material_viewed", days_ago=0.5)
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.login(username="root", password="pw-root-123")

    first = client.get(LIST)
    assert first.status_code == 200
    assert first.context["result"] is None
    assert "徐汇客户" in client.get(LIST, {"staff": org.staff_b.pk}).content.decode()
