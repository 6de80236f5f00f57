"""The customer profile and the identity reveal: scope, masking, audit, merges."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from siyu.core.models import AuditLog
from siyu.customers.models import Identity, MergeRecord
from siyu.customers.services import customer_resolve, customers_merge
from siyu.customers.tests.factories import (
    ChannelFactory,
    CustomerFactory,
    PhoneIdentityFactory,
    RelationshipFactory,
)
from siyu.org.tests.factories import StaffFactory
from siyu.segments.models import CustomerClv


def detail(customer) -> str:
    return reverse("customers:detail", args=[customer.pk])


def reveal(customer, identity) -> str:
    return reverse("customers:identity_reveal", args=[customer.pk, identity.pk])


@pytest.fixture
def mine(org):
    """staff_a's customer with a phone and a relationship; the profile's usual shape."""
    customer = CustomerFactory(name="王小明", owner=org.staff_a, province="上海", city="上海")
    PhoneIdentityFactory(customer=customer, value="+8613812341234")
    RelationshipFactory(customer=customer, staff=org.staff_a)
    return customer


@pytest.fixture
def theirs(org):
    customer = CustomerFactory(name="赵六", owner=org.staff_b)
    PhoneIdentityFactory(customer=customer, value="+8613700005678")
    return customer


def test_anonymous_is_sent_to_login(client, mine):
    response = client.get(detail(mine))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
def test_profile_opens_for_viewers_in_scope(org, mine, login, who):
    response = login(getattr(org, who)).get(detail(mine))
    assert response.status_code == 200
    content = response.content.decode()
    assert "王小明" in content
    assert f"添加员工 {org.staff_a.name} 为好友" in content  # the relationship, on the timeline


@pytest.mark.parametrize("who", ["manager_b", "staff_b", "staff_a2"])
def test_profile_is_404_outside_the_scope(org, mine, login, who):
    response = login(getattr(org, who)).get(detail(mine))
    assert response.status_code == 404


def test_unknown_profile_is_404(org, login):
    assert login(org.admin).get("/customers/999999/").status_code == 404
    assert login(org.admin).get("/customers/abc/").status_code == 404


def test_profile_shows_the_four_dimensions(org, login):
    # given a customer with attributes in every dimension
    channel = ChannelFactory(code="xhs", name="小红书")
    customer = CustomerFactory(
        name="林一",
        owner=org.staff_a,
        gender="f",
        province="浙江",
        city="杭州",
        first_channel=channel,
        stage="member",
        consent_sms=True,
        consent_email=False,
        rfm_group="champions",
        rfm_r=5,
        rfm_f=4,
        rfm_m=5,
        rfm_frequency=3,
        rfm_monetary=1299,
        is_super_user=True,
    )
    response = login(org.staff_a).get(detail(customer))
    content = response.content.decode()
    for text in (
        *("基础属性", "偏好", "行为", "商业价值", "女", "浙江 杭州", "小红书", "会员"),
        *("重要价值客户", "R5 F4 M5", "超级用户", "¥1299.00 · 3 单"),
    ):
        assert text in content, text
    assert "已同意" in content and "已拒绝" in content


def test_identities_are_masked_for_staff_with_a_reveal_button(org, mine, login):
    response = login(org.staff_a).get(detail(mine))
    content = response.content.decode()
    assert "138****1234" in content
    assert "13812341234" not in content
    phone = mine.identities.get()
    assert reveal(mine, phone) in content


def test_admin_sees_identities_in_full_and_the_view_is_audited(org, mine, login):
    response = login(org.admin).get(detail(mine))
    content = response.content.decode()
    assert "+8613812341234" in content
    assert 'hx-post="' not in content  # nothing to reveal
    entry = AuditLog.objects.get(action=AuditLog.Action.VIEW_PII)
    assert entry.actor == org.admin.user
    assert (entry.target_type, entry.target_id) == ("customers.customer", str(mine.pk))


def test_a_masked_view_is_not_audited(org, mine, login):
    login(org.staff_a).get(detail(mine))
    assert not AuditLog.objects.exists()


def test_reveal_returns_the_full_value_and_writes_an_audit_record(org, mine, login):
    phone = mine.identities.get()
    response = login(org.staff_a).post(reveal(mine, phone), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "+8613812341234" in response.content.decode()
    entry = AuditLog.objects.get(action=AuditLog.Action.REVEAL)
    assert entry.actor == org.staff_a.user
    assert entry.target_id == str(mine.pk)
    assert entry.detail["identity_id"] == phone.pk
    assert entry.ip == "127.0.0.1"


def test_reveal_needs_post(org, mine, login):
    phone = mine.identities.get()
    assert login(org.staff_a).get(reveal(mine, phone)).status_code == 405
    assert not AuditLog.objects.exists()


def test_reveal_needs_a_csrf_token(org, mine, client):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(org.staff_a.user)
    response = csrf_client.post(reveal(mine, mine.identities.get()))
    assert response.status_code == 403
    assert not AuditLog.objects.exists()


def test_reveal_outside_the_scope_is_404(org, mine, theirs, login):
    response = login(org.staff_a).post(reveal(theirs, theirs.identities.get()))
    assert response.status_code == 404
    assert not AuditLog.objects.exists()


def test_reveal_of_another_customers_identity_is_404(org, mine, theirs, login):
    # given staff_a asks for staff_b's phone through their own customer's URL
    response = login(org.staff_a).post(reveal(mine, theirs.identities.get()))
    assert response.status_code == 404
    assert not AuditLog.objects.exists()


def test_anonymous_reveal_is_sent_to_login(client, mine):
    response = client.post(reveal(mine, mine.identities.get()))
    assert response.status_code == 302
    assert not AuditLog.objects.exists()


def test_tombstone_redirects_to_its_survivor(org, login):
    # given two customers resolved into one by a shared phone
    first = customer_resolve(identifiers=[("phone", "13812340001")], attributes={"name": "甲"})
    second = customer_resolve(identifiers=[("email", "b@example.com")], attributes={"name": "乙"})
    merged = customer_resolve(identifiers=[("phone", "13812340001"), ("email", "b@example.com")])
    survivor, tombstone = merged.customer, second.customer
    assert survivor.pk == first.customer.pk
    # when the tombstone's profile is opened
    response = login(org.admin).get(detail(tombstone))
    # then the browser goes to the survivor, whose merge history names the absorbed id
    assert response.status_code == 302
    assert response["Location"] == detail(survivor)
    content = login(org.admin).get(detail(survivor)).content.decode()
    assert f"#{tombstone.pk}" in content
    assert "身份标识" in content  # "what moved" names the model in Chinese


def test_tombstone_of_an_out_of_scope_customer_is_404(org, theirs, login):
    tombstone = CustomerFactory(name="旧", owner=org.staff_b)
    customers_merge(survivor=theirs, absorbed=[tombstone])
    assert login(org.staff_a).get(detail(tombstone)).status_code == 404


def test_names_and_remarks_are_rendered_escaped(org, login):
    customer = CustomerFactory(name="<script>alert(1)</script>", owner=org.staff_a)
    RelationshipFactory(customer=customer, staff=org.staff_a, remark="<b>vip</b>")
    content = login(org.staff_a).get(detail(customer)).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "<b>vip</b>" not in content
    assert "&lt;script&gt;" in content


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
def test_query_count_does_not_grow_with_identities_relationships_and_merges(org, login, who):
    channel = ChannelFactory(code="douyin", name="抖音")
    small = CustomerFactory(owner=org.staff_a, first_channel=channel)
    PhoneIdentityFactory(customer=small)
    RelationshipFactory(customer=small, staff=org.staff_a, channel=channel)
    # given a large profile: many identities, relationships with staff of two stores, merges
    large = CustomerFactory(owner=org.staff_a, first_channel=channel)
    for i in range(10):
        PhoneIdentityFactory(customer=large)
        Identity.objects.create(customer=large, kind="jd_buyer", value=f"jd{i}", channel=channel)
        staff = StaffFactory(store=org.store_a if i % 2 else org.store_b)
        RelationshipFactory(customer=large, staff=staff, channel=channel, state=f"s{i}")
        absorbed = CustomerFactory(owner=org.staff_a, merged_into=large)
        MergeRecord.objects.create(
            survivor=large, absorbed=absorbed, moved={"customers.identity": 2}
        )
    RelationshipFactory(customer=large, staff=org.staff_a)
    client = login(getattr(org, who))
    assert _queries(client, detail(large)) == _queries(client, detail(small))


def test_profile_shows_predicted_lifetime_value_and_last_purchase(org, login):
    scored = CustomerFactory(owner=org.staff_a, rfm_last_paid_at=timezone.now() - timedelta(3))
    CustomerClv.objects.create(
        customer=scored,
        p_alive=0.8734,
        purchases_90=0.4321,
        purchases_365=1.55,
        value_365=Decimal("456.78"),
    )
    unscored = CustomerFactory(owner=org.staff_a)
    client = login(org.staff_a)

    content = client.get(detail(scored)).content.decode()
    for text in ("存活概率", "87%", "90 天内 0.4 次 · 365 天内 1.6 次", "¥456.78", "3\xa0日前"):
        assert text in content, text

    content = client.get(detail(unscored)).content.decode()
    assert "存活概率" in content and "87%" not in content
    # one query for the profile whether or not the customer has a prediction
    assert _queries(client, detail(scored)) == _queries(client, detail(unscored))
