"""The profile's timeline: every kind of record newest first, the kind filter, scope, and a
query count that does not grow with the history. Paging: test_timeline_paging.py; how events
and relationships read: test_timeline_kinds.py."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.campaigns.models import Conversion, StaffTask
from siyu.commerce.models import Order
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import (
    ChannelFactory,
    CustomerFactory,
    DeliveryFactory,
    RelationshipFactory,
)
from siyu.customers.timeline import customer_timeline
from siyu.events.models import Event
from siyu.org.tests.factories import StaffFactory
from siyu.segments.models import StageChange
from siyu.tags.models import Source, TagChange
from siyu.tags.services import tag_delete, tags_assign, tags_remove
from siyu.tags.tests.factories import TagFactory

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def detail(customer) -> str:
    return reverse("customers:detail", args=[customer.pk])


def partial(customer, kind: str = "") -> str:
    url = reverse("customers:timeline", args=[customer.pk])
    return f"{url}?kind={kind}" if kind else url


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


def stage(customer, before, after, when) -> StageChange:
    return StageChange.objects.create(customer=customer, from_stage=before, to_stage=after, at=when)


def tag_change(customer, tag, action, when, source=Source.MANUAL, by=None) -> TagChange:
    return TagChange.objects.create(
        customer=customer, tag=tag, tag_name=tag.name, action=action, source=source, by=by, at=when
    )


def order(customer, channel, ref, amount, **fields) -> Order:
    return Order.objects.create(
        customer=customer, channel=channel, external_id=ref, amount=Decimal(amount), **fields
    )


@pytest.fixture
def history(org, tmall):
    """staff_a's customer with one record of each kind, an hour apart, plus orders that are
    not on the timeline (unpaid, cancelled)."""
    customer = CustomerFactory(name="王小明", owner=org.staff_a)
    vip = TagFactory(name="高价值", colour="#d4380d")
    stage(customer, "lead", "first_purchase", at(1))
    tag_change(customer, vip, "added", at(2), source=Source.RULE)
    order(customer, tmall, "T1", "199.00", status="paid", paid_at=at(3), placed_at=at(0))
    order(customer, tmall, "T2", "88.00", status="pending", placed_at=at(4))
    order(customer, tmall, "T3", "66.00", status="cancelled", placed_at=at(4))
    return customer


def kinds_in_order(timeline) -> list[str]:
    return [item.kind for item in timeline.items]


def test_records_of_every_kind_come_newest_first(history, tmall):
    order(
        history,
        tmall,
        "T4",
        "300.00",
        status="partially_refunded",
        refund_amount=Decimal("50.00"),
        paid_at=at(5),
    )
    timeline = customer_timeline(history)
    assert [(i.kind, i.at) for i in timeline.items] == [
        ("order", at(5)),
        ("order", at(3)),
        ("tag", at(2)),
        ("stage", at(1)),
    ]
    assert [i.row.external_id for i in timeline.items[:2]] == ["T4", "T1"]  # T2, T3 unpaid
    assert not timeline.has_more


def test_an_order_without_a_paid_time_is_placed_at_its_order_time(history, tmall):
    order(history, tmall, "T5", "10.00", status="completed", placed_at=at(1.5))
    assert kinds_in_order(customer_timeline(history)) == ["order", "tag", "order", "stage"]


def test_the_kinds_filter_keeps_only_those_kinds(history):
    assert kinds_in_order(customer_timeline(history, kinds=["stage"])) == ["stage"]
    assert kinds_in_order(customer_timeline(history, kinds=["tag", "order"])) == ["order", "tag"]


def test_the_limit_keeps_the_newest_and_says_there_is_more(history):
    for hour in range(10, 15):
        stage(history, "engaged", "repeat", at(hour))
    timeline = customer_timeline(history, limit=3)
    assert [i.at for i in timeline.items] == [at(14), at(13), at(12)]
    assert timeline.has_more
    assert not customer_timeline(history, limit=8).has_more  # exactly 8 records


def test_the_timeline_is_one_query_per_kind(history, django_assert_num_queries):
    # event, order, delivery, tag, stage, relationship (added, removed), merge
    with django_assert_num_queries(8):
        customer_timeline(history)
    with django_assert_num_queries(1):
        customer_timeline(history, kinds=["tag"])
    # events on the page: one more for the registry's labels, one for who shared materials
    Event.objects.create(customer=history, type="joined_group", occurred_at=at(7))
    Event.objects.create(
        customer=history, type="material_viewed", occurred_at=at(8), properties={"staff_id": 1}
    )
    with django_assert_num_queries(3):
        customer_timeline(history, kinds=["event"])


def test_a_removal_stays_on_the_timeline_after_the_tag_is_deleted(org, history):
    # given a manual tag put on and taken off by staff, then the tag deleted by an admin
    gift = TagFactory(name="赠品党")
    tags_assign(customer_ids=[history.pk], tag=gift, source=Source.MANUAL, user=org.staff_a.user)
    tags_remove(customer_ids=[history.pk], tag=gift, source=Source.MANUAL, user=org.staff_a.user)
    tags_assign(customer_ids=[history.pk], tag=gift, source=Source.IMPORT)
    tag_delete(tag=gift, user=org.admin.user)
    # then its whole history is still there, by name, newest first
    changes = [i.row for i in customer_timeline(history, kinds=["tag"]).items]
    assert [(c.tag_name, c.action, c.source) for c in changes] == [
        ("赠品党", "removed", "manual"),  # the deletion
        ("赠品党", "added", "import"),
        ("赠品党", "removed", "manual"),
        ("赠品党", "added", "manual"),
        ("高价值", "added", "rule"),
    ]
    assert all(c.tag is None for c in changes[:4])
    content = _get(org.staff_a, partial(history, "tag")).content.decode()
    assert content.count("赠品党") == 4
    assert "去掉标签" in content and "加上标签" in content
    assert "手动 · " + org.staff_a.name in content


def test_a_merged_customers_history_moves_to_the_survivor(org, history, tmall):
    # given a second record of the same person with its own history
    other = CustomerFactory(name="小明的天猫号", owner=org.staff_a)
    stage(other, "lead", "first_purchase", at(0.5))
    order(other, tmall, "T9", "59.00", status="completed", paid_at=at(2.5))
    tags_assign(customer_ids=[other.pk], tag=TagFactory(name="复购"), source=Source.WECOM)
    TagChange.objects.filter(customer=other).update(at=at(1.5))
    Event.objects.create(customer=other, type="joined_group", occurred_at=at(2.2))
    RelationshipFactory(customer=other, staff=org.staff_a2, added_at=at(0.2))
    # when it is merged into the customer
    [record] = customers_merge(survivor=history, absorbed=[other], reason="同一手机号")
    # then the survivor's timeline has both histories and the merge itself
    timeline = customer_timeline(history)
    assert [(i.kind, i.at) for i in timeline.items] == [
        ("merge", record.merged_at),
        ("order", at(3)),
        ("order", at(2.5)),
        ("event", at(2.2)),
        ("tag", at(2)),
        ("tag", at(1.5)),
        ("stage", at(1)),
        ("stage", at(0.5)),
        ("relationship", at(0.2)),
    ]
    assert not customer_timeline(other).items
    content = _get(org.staff_a, detail(history)).content.decode()
    assert f"合并了客户 #{other.pk}" in content and "同一手机号" in content


def _get(staff, url):
    from django.test import Client

    client = Client()
    client.force_login(staff.user)
    return client.get(url, headers={"HX-Request": "true"})


def test_the_profile_renders_the_records_in_chinese_in_the_organisations_zone(org, history, login):
    content = login(org.staff_a).get(detail(history)).content.decode()
    assert "暂无时间线记录" not in content
    assert "阶段：线索 → 首购" in content
    assert "加上标签" in content and "高价值" in content and "（规则）" in content
    assert "color: #d4380d" in content  # the tag's colour
    assert "天猫订单 ¥199.00 已付款" in content
    # 03:00 UTC is 11:00 in Asia/Shanghai, under the day's header
    assert "2026-03-01 星期日</h3>" in content
    assert ">11:00</time>" in content and ">03:00</time>" not in content
    assert "¥88.00" not in content and "¥66.00" not in content  # unpaid, cancelled


def test_a_refund_shows_with_its_order(org, history, tmall, login):
    order(
        history,
        tmall,
        "T7",
        "120.00",
        status="refunded",
        refund_amount=Decimal("120.00"),
        paid_at=at(6),
    )
    content = login(org.staff_a).get(partial(history, "order")).content.decode()
    # the refund is a line of its own under the payment: the order has no refund time
    text = " ".join(content.split())
    assert '天猫订单 ¥120.00 已退款 <span class="muted mono">T7</span>' in text
    assert '<div class="timeline-refund">↳ 退款 ¥120.00</div>' in text
    assert "阶段" not in content.split("</nav>")[1]  # only orders below the kind links


def test_the_kind_links_swap_only_the_timeline(org, history, login):
    client = login(org.staff_a)
    content = client.get(detail(history)).content.decode()
    assert f'hx-get="{partial(history, "stage")}"' in content
    assert f'href="{detail(history)}?kind=stage#customer-timeline"' in content
    # the address bar follows the filter, so a reload or a shared link shows the same records
    assert f'hx-push-url="{detail(history)}?kind=stage"' in content
    response = client.get(partial(history, "stage"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('id="customer-timeline"') == 1
    assert "王小明" not in body  # the partial, not the profile
    assert "阶段：线索 → 首购" in body and "天猫订单" not in body.split("</nav>")[1]


def test_the_profile_takes_the_kind_without_javascript(org, history, login):
    content = login(org.staff_a).get(detail(history) + "?kind=order").content.decode()
    section = content.split('id="customer-timeline"')[1].split("</nav>")[1]
    assert "天猫订单 ¥199.00" in section and "阶段：" not in section


def test_an_unknown_kind_is_a_400_with_the_reason(org, history, login):
    client = login(org.staff_a)
    response = client.get(partial(history, "bogus"))
    assert response.status_code == 400
    assert "bogus" in response.content.decode()
    # the profile reports it and shows everything
    content = client.get(detail(history) + "?kind=bogus").content.decode()
    assert 'role="alert"' in content and "阶段：线索 → 首购" in content


@pytest.mark.parametrize("who", ["manager_b", "staff_b", "staff_a2"])
def test_the_timeline_is_404_outside_the_scope(org, history, login, who):
    assert login(getattr(org, who)).get(partial(history)).status_code == 404


def test_anonymous_is_sent_to_login(client, history):
    response = client.get(partial(history))
    assert response.status_code == 302


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _fill(customer, channel, n: int) -> None:
    """n records of each kind but merges, with authors, live and deleted tags, materials
    shared by several staff, relationships with n staff, half of them ended, and campaign
    messages of n campaigns (half of them staff tasks), each credited with an order."""
    tags = [TagFactory(), TagFactory()]
    for i in range(n):
        delivery = DeliveryFactory(
            customer=customer,
            variant__step__channel="staff_task" if i % 2 else "sms",
            variant__step__campaign__owner=customer.owner if i % 3 else StaffFactory(),
            variant__step__campaign__goal="paid_order",
            sent_at=at(i),
        )
        if i % 2:
            StaffTask.objects.create(
                delivery=delivery, staff=customer.owner, customer=customer, text="x", due_at=at(i)
            )
        Conversion.objects.create(
            campaign_id=delivery.campaign_id,
            delivery=delivery,
            customer=customer,
            source=f"order:{delivery.pk}",
            occurred_at=at(i),
            amount=Decimal("9.90"),
        )
        stage(customer, "engaged", "repeat", at(i))
        tag_change(customer, tags[i % 2], "added", at(i), by=customer.owner.user)
        order(customer, channel, f"{customer.pk}-{i}", "9.90", status="paid", paid_at=at(i))
        sharer = StaffFactory()
        Event.objects.create(
            customer=customer,
            type="material_viewed" if i % 2 else f"type_{i % 5}",
            occurred_at=at(i),
            properties={
                "staff_id": sharer.pk,
                "material_title": f"素材{i}",
                "phone": "13812345678",
            },
        )
        RelationshipFactory(
            customer=customer,
            staff=sharer,
            added_at=at(i),
            channel=channel,
            **(
                {"status": "removed", "removed_at": at(i + 0.5), "removed_by": "staff"}
                if i % 2
                else {}
            ),
        )
    tag_delete(tag=tags[1])


@pytest.mark.parametrize("who", ["admin", "staff_a"])
def test_the_profiles_query_count_does_not_grow_with_the_timeline(org, tmall, login, who):
    few, many = (CustomerFactory(owner=org.staff_a) for _ in range(2))
    _fill(few, tmall, 3)
    _fill(many, tmall, 40)
    for absorbed in (CustomerFactory(owner=org.staff_a) for _ in range(3)):
        customers_merge(survivor=many, absorbed=[absorbed])
    client = login(getattr(org, who))
    # staff_a: session, user, staff, customer, identities, relationships, merges, tags panel
    # (tags, choices), then one query per timeline kind (two for relationships), two to
    # describe the events and two for the messages (the campaigns the viewer may open, the
    # conversions credited); the admin adds the audit record.
    expected = {"admin": 24, "staff_a": 23}[who]
    assert _queries(client, detail(few)) == expected
    assert _queries(client, detail(many)) == expected
    assert _queries(client, partial(many)) == _queries(client, partial(few))
    # and so does every older page, down to the last
    url, per_page, shown = partial(many), _queries(client, partial(few)), 0
    while url:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert len(ctx.captured_queries) <= per_page
        shown += len(response.context["timeline"].items)
        cursor = response.context["timeline"].next_cursor
        url = f"{partial(many)}?before={cursor}" if cursor else None
    # 40 each of events, orders, messages, tags, stages and relationships, 20 removals,
    # 3 merges
    assert shown == 263
