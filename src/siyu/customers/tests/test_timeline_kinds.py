"""How each kind of timeline record reads on the profile: behaviour events by the registry,
opened materials, staff relationships, day headers, and identifiers masked for staff."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.customers.tests.factories import ChannelFactory, CustomerFactory, RelationshipFactory
from siyu.events.models import Event, EventType
from siyu.tags.models import Source, TagChange

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def customer(org):
    return CustomerFactory(name="王小明", owner=org.staff_a)


def timeline_text(client, customer, kind: str = "") -> str:
    """The timeline's records as text, whitespace collapsed."""
    url = reverse("customers:timeline", args=[customer.pk])
    response = client.get(url, {"kind": kind} if kind else {}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return " ".join(response.content.decode().split("</nav>")[1].split())


def event(customer, type_: str, when: datetime, **properties) -> Event:
    return Event.objects.create(
        customer=customer, type=type_, occurred_at=when, properties=properties
    )


def test_an_event_reads_by_the_registrys_label_and_property_descriptions(org, customer, login):
    EventType.objects.create(
        name="coupon_used",
        label="使用优惠券",
        properties={"coupon": "优惠券名称", "amount": "抵扣金额"},
    )
    event(customer, "coupon_used", at(1), coupon="满100减20", amount=20, internal_ref="x-9")
    text = timeline_text(login(org.staff_a), customer, "event")
    assert (
        '<strong>使用优惠券</strong> <span class="muted">抵扣金额：</span>20'
        ' <span class="muted">优惠券名称：</span>满100减20'
    ) in text  # by property name, the same on both databases
    assert "internal_ref" not in text  # the registry describes the properties that matter


def test_an_unlabelled_event_shows_its_type_and_first_properties(org, customer, login):
    event(customer, "live_watched", at(1), room="新品直播", minutes=42, x=1, y=2, z=3)
    text = timeline_text(login(org.staff_a), customer)
    assert "<strong>live_watched</strong>" in text
    assert (
        "minutes：</span>42" in text and "room：</span>新品直播" in text and "y：</span>2" in text
    )
    assert "z：" not in text  # four at most, by name


def test_an_opened_material_names_its_title_and_who_shared_it(org, customer, login):
    EventType.objects.update_or_create(name="material_viewed", defaults={"label": "打开素材"})
    props = {
        "material_id": 7,
        "material_title": "春季新品手册",
        "link_code": "k3Xa9",
        "staff_id": 0,
    }
    event(customer, "material_viewed", at(1), **{**props, "staff_id": org.staff_a2.pk})
    event(customer, "material_viewed", at(2), **{**props, "material_title": "", "staff_id": None})
    text = timeline_text(login(org.staff_a), customer)
    assert f'打开了《春季新品手册》 <span class="muted">（{org.staff_a2.name} 分享）</span>' in text
    assert "打开了《#7》" in text  # no title kept: its id


def test_order_events_do_not_repeat_the_orders(org, customer, login):
    event(customer, "order_paid", at(1), order_id="T1", amount=199)
    event(customer, "checked_in", at(2))
    text = timeline_text(login(org.staff_a), customer)
    assert "checked_in" in text and "order_paid" not in text


@pytest.mark.parametrize(
    ("who", "phone", "email", "openid"),
    [
        ("staff_a", "138****5678", "z***@example.com", "oX****9z"),
        ("admin", "13812345678", "zhang@example.com", "oX12ab9z"),
    ],
)
def test_identifiers_in_event_properties_are_masked_as_on_the_profile(
    org, customer, login, who, phone, email, openid
):
    event(
        customer,
        "form_submitted",
        at(1),
        contact="138 1234 5678",
        mail="zhang@example.com",
        openid="oX12ab9z",
    )
    text = timeline_text(login(getattr(org, who)), customer)
    assert f"contact：</span>{phone if who == 'staff_a' else '138 1234 5678'}" in text
    assert f"mail：</span>{email}" in text and f"openid：</span>{openid}" in text


def test_relationships_read_as_added_and_removed(org, customer, login):
    wecom = ChannelFactory(code="poster", name="门店海报")
    RelationshipFactory(
        customer=customer, staff=org.staff_a, added_at=at(1), channel=wecom, state="store-1"
    )
    for hours, removed_by, who in ((2, "customer", org.staff_a2), (3, "staff", org.staff_b)):
        RelationshipFactory(
            customer=customer,
            staff=who,
            added_at=at(0),
            status="removed",
            removed_at=at(hours),
            removed_by=removed_by,
        )
    moved = RelationshipFactory(customer=customer, staff=org.manager_a, added_at=at(0))
    moved.status, moved.removed_at, moved.removed_by = "removed", at(4), "transfer"
    moved.save()
    text = timeline_text(login(org.admin), customer, "relationship")
    a, a2, b, m = (s.name for s in (org.staff_a, org.staff_a2, org.staff_b, org.manager_a))
    # newest first: the transfer, the two removals, the adding via the poster, three addings
    assert text.index(f"已从员工 {m} 转出") < text.index(f"被员工 {b} 删除")
    assert text.index(f"被员工 {b} 删除") < text.index(f"删除或拉黑了员工 {a2}")
    assert (
        f'添加员工 {a} 为好友 · 来自渠道 门店海报 <span class="muted mono">store-1</span>' in text
    )
    assert text.count("为好友") == 4


def test_days_are_headed_today_yesterday_or_by_date(org, customer, login):
    today = timezone.localdate()
    noon = timezone.make_aware(datetime.combine(today, time(12)))
    for day in (0, 1, 3):
        event(customer, f"visited_{day}", noon - timedelta(days=day))
    text = timeline_text(login(org.staff_a), customer)
    three_days_ago = today - timedelta(days=3)
    assert f"<h3>今日 · {today:%Y-%m-%d}" in text
    assert f"<h3>昨日 · {today - timedelta(days=1):%Y-%m-%d}" in text
    assert f"<h3>{three_days_ago:%Y-%m-%d}" in text
    assert text.count("<h3>") == 3


def test_a_tag_put_on_through_the_rest_api_says_so(org, customer, login):
    TagChange.objects.create(
        customer=customer, tag_name="复购", action="added", source=Source.API, at=at(1)
    )
    assert "（REST API 接口）" in timeline_text(login(org.staff_a), customer, "tag")
