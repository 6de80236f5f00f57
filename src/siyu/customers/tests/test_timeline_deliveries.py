"""Campaign deliveries on the customer timeline (触达): what was sent, failed or held back, how
it reads, who may open the campaign, staff tasks and conversions from the real engine, masking,
the kind filter and the query count."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.campaigns.attribution import conversions_attribute
from siyu.campaigns.models import Campaign, Conversion, Delivery, StaffTask
from siyu.campaigns.services import (
    campaign_create,
    campaign_plan,
    campaign_schedule,
    deliveries_send_due,
    staff_task_done,
    step_add,
)
from siyu.commerce.models import Order
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import (
    CampaignFactory,
    ChannelFactory,
    CustomerFactory,
    DeliveryFactory,
    StepFactory,
    VariantFactory,
)
from siyu.customers.timeline import customer_timeline
from siyu.org.selectors import viewer_for
from siyu.segments.segment_services import segment_create

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
S = Delivery.Status


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def customer(org):
    return CustomerFactory(name="王小明", city="上海", owner=org.staff_a)


@pytest.fixture
def recall(org):
    """An admin's SMS campaign, its first step, variant B."""
    campaign = CampaignFactory(name="春季召回", owner=org.admin)
    step = StepFactory(campaign=campaign, order=2, channel="sms")
    return VariantFactory(step=step, name="B", body="")


def timeline_text(client, customer, kind: str = "delivery") -> str:
    url = reverse("customers:timeline", args=[customer.pk])
    response = client.get(url, {"kind": kind} if kind else {}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return " ".join(response.content.decode().split("</nav>")[1].split())


def test_a_sent_message_names_campaign_step_channel_variant_status_and_text(
    org, customer, recall, login
):
    DeliveryFactory(
        customer=customer,
        variant=recall,
        sent_at=at(1),
        rendered_text="王小明您好，春季新品\n到店有礼",
    )
    text = timeline_text(login(org.staff_a), customer)
    assert (
        '>11:00</time> <strong>春季召回</strong> <span class="muted">· 第 2 步 · 短信 · 版本 B'
        '</span> <span class="timeline-delivery-sent">已发送</span>'
        ' <div class="timeline-text">“王小明您好，春季新品 到店有礼”</div>'
    ) in text


def test_only_those_who_may_open_the_campaign_get_its_link(org, customer, recall, login):
    DeliveryFactory(customer=customer, variant=recall, sent_at=at(1))
    link = f'<a href="{reverse("campaigns:detail", args=[recall.step.campaign_id])}">春季召回</a>'
    assert link in timeline_text(login(org.admin), customer)
    # staff_a sees the customer (their own) but not the admin's campaign
    assert link not in timeline_text(login(org.staff_a), customer)
    Campaign.objects.filter(pk=recall.step.campaign_id).update(owner=org.staff_a2)
    assert link in timeline_text(login(org.manager_a), customer)  # the owner's store
    assert link not in timeline_text(login(org.staff_a), customer)
    Campaign.objects.filter(pk=recall.step.campaign_id).update(owner=org.staff_a)
    assert link in timeline_text(login(org.staff_a), customer)


def test_failed_and_held_back_messages_say_why(org, customer, recall, login):
    DeliveryFactory(
        customer=customer,
        variant=recall,
        status=S.FAILED,
        claimed_at=at(2),
        error="gateway said 400: number 13812345678 is invalid\nTraceback (most recent call)",
        rendered_text="王小明您好",
    )
    DeliveryFactory(
        customer=customer, variant=recall, status=S.SUPPRESSED, reason="cap_day", claimed_at=at(1)
    )
    # held back when planned: at the time it was planned for
    DeliveryFactory(
        customer=customer, variant=recall, status=S.SUPPRESSED, reason="opt_out", planned_for=at(0)
    )
    text = timeline_text(login(org.staff_a), customer)
    assert (
        '>12:00</time> <strong>春季召回</strong> <span class="muted">· 第 2 步 · 短信 · 版本 B'
        '</span> <span class="timeline-delivery-failed">失败：gateway said 400: number '
        "138****5678 is invalid</span>"
    ) in text
    assert "Traceback" not in text  # the first line only
    assert ">11:00</time>" in text and "已拦截：每日频次上限</span>" in text
    assert ">10:00</time>" in text and "已拦截：已退订</span>" in text


def test_what_has_not_happened_is_not_on_the_timeline(org, customer, recall):
    later = timezone.now() + timedelta(days=3)
    shown = DeliveryFactory(customer=customer, variant=recall, sent_at=at(1))
    DeliveryFactory(customer=customer, variant=recall, status=S.PENDING, planned_for=at(2))
    DeliveryFactory(customer=customer, variant=recall, status=S.SENDING, claimed_at=at(3))
    DeliveryFactory(customer=customer, variant=recall, status=S.CANCELLED, planned_for=at(4))
    # a step held back at planning for a time still to come: history once that time comes
    DeliveryFactory(
        customer=customer, variant=recall, status=S.SUPPRESSED, reason="opt_out", planned_for=later
    )
    accepted = DeliveryFactory(customer=customer, variant=recall, status=S.ACCEPTED, sent_at=at(5))
    items = customer_timeline(customer).items
    assert [(i.kind, i.id, i.at) for i in items] == [
        ("delivery", accepted.pk, at(5)),
        ("delivery", shown.pk, at(1)),
    ]


def test_identifiers_in_the_text_are_masked_for_staff_not_for_the_admin(
    org, customer, recall, login
):
    DeliveryFactory(
        customer=customer,
        variant=recall,
        sent_at=at(1),
        rendered_text=(
            "您的手机+86 13900001234已绑定，回执发往 wang.xm@example.com，单号20260301888812345"
        ),
    )
    staff = timeline_text(login(org.staff_a), customer)
    assert "您的手机+86 139****1234已绑定，回执发往 w***@example.com" in staff
    assert "13900001234" not in staff and "wang.xm" not in staff
    assert "单号20260301888812345" in staff  # a longer number is not a phone
    admin = timeline_text(login(org.admin), customer)
    assert "13900001234" in admin and "wang.xm@example.com" in admin


def test_a_long_text_is_an_excerpt(org, customer, recall, login):
    DeliveryFactory(customer=customer, variant=recall, sent_at=at(1), rendered_text="好" * 300)
    text = timeline_text(login(org.staff_a), customer)
    assert "“" + "好" * 119 + "…”" in text


@pytest.fixture
def shanghai(org):
    return segment_create(name="上海客户", definition={"attr": "city", "op": "eq", "value": "上海"})


def _run(
    org,
    shanghai,
    channel: str,
    now: datetime,
    body: str = "{customer.name}您好，我是{staff.name}，本周到店有礼",
    **fields,
) -> Campaign:
    """A one-step campaign for Shanghai customers, planned and sent by the engine at `now`."""
    campaign = campaign_create(
        name="到店提醒", kind="broadcast", owner=org.admin, segment=shanghai, **fields
    )
    step_add(
        campaign=campaign,
        channel=channel,
        variants=[{"body": body}],
    )
    campaign_schedule(campaign=campaign, now=now)
    campaign_plan(campaign=campaign, now=now)
    deliveries_send_due(now=now, channels=[channel])
    return campaign


def test_a_staff_task_says_whether_it_was_done(org, customer, shanghai, login):
    now = at(0)
    _run(org, shanghai, "staff_task", now)
    text = timeline_text(login(org.staff_a), customer)
    name = org.staff_a.name
    assert "· 第 1 步 · 员工任务 · 版本 A</span>" in text
    assert f"“王小明您好，我是{name}，本周到店有礼”" in text
    assert f"↳ {name} 的员工任务：尚未完成" in text
    task = StaffTask.objects.get(customer=customer)
    staff_task_done(task=task, staff=org.staff_a, now=at(3.5))
    assert f"↳ {name} 的员工任务：已于 2026-03-01 13:30 完成" in timeline_text(
        login(org.staff_a), customer
    )


def test_a_moments_post_says_whose_it_was_and_whether_it_was_posted(org, customer, shanghai, login):
    _run(org, shanghai, "staff_moments", at(0), body="{staff.name}：本周到店有礼")
    name = org.staff_a.name
    client = login(org.staff_a)
    text = timeline_text(client, customer)
    assert "· 第 1 步 · 员工发朋友圈 · 版本 A</span>" in text
    assert f"↳ {name} 的员工任务：尚未完成" in text
    staff_task_done(task=StaffTask.objects.get(), staff=org.staff_a, now=at(3.5))
    assert f"↳ {name} 的员工任务：已于 2026-03-01 13:30 完成" in timeline_text(client, customer)


def test_a_paid_order_credited_to_the_message_shows_under_it(org, customer, shanghai, login):
    now = at(0)
    _run(org, shanghai, "staff_task", now, goal=Campaign.Goal.PAID_ORDER, goal_days=7)
    tmall = ChannelFactory(code="tmall", name="天猫")
    for ref, amount in (("T1", "199.00"), ("T2", "20.50")):
        Order.objects.create(
            customer=customer,
            channel=tmall,
            external_id=ref,
            amount=Decimal(amount),
            status="paid",
            paid_at=at(5),
        )
    conversions_attribute(now=at(6))
    assert Conversion.objects.filter(customer=customer).count() == 2
    text = timeline_text(login(org.staff_a), customer)
    assert "↳ 转化：2 笔付款，共 ¥219.50</div>" in text
    Conversion.objects.filter(source=f"order:{Order.objects.get(external_id='T2').pk}").delete()
    assert "↳ 转化：付款 ¥199.00</div>" in timeline_text(login(org.staff_a), customer)


def test_an_event_goal_reads_as_reached(org, customer, recall, login):
    campaign = Campaign.objects.get(pk=recall.step.campaign_id)
    campaign.goal, campaign.goal_event_type = Campaign.Goal.EVENT, "checked_in"
    campaign.save(update_fields=["goal", "goal_event_type"])
    delivery = DeliveryFactory(customer=customer, variant=recall, sent_at=at(1))
    Conversion.objects.create(
        campaign=campaign, delivery=delivery, customer=customer, source="event:1", occurred_at=at(2)
    )
    assert "↳ 转化：已达成目标</div>" in timeline_text(login(org.staff_a), customer)


def test_the_kind_filter_keeps_only_messages(org, customer, recall, login):
    DeliveryFactory(customer=customer, variant=recall, sent_at=at(1))
    customer.events.create(type="visit", occurred_at=at(2))
    client = login(org.staff_a)
    profile = reverse("customers:detail", args=[customer.pk])
    content = client.get(profile).content.decode()
    assert f'href="{profile}?kind=delivery#customer-timeline"' in content
    assert ">触达</a>" in content
    assert [i.kind for i in customer_timeline(customer, kinds=["delivery"]).items] == ["delivery"]
    text = timeline_text(client, customer)
    assert "春季召回" in text and "visit" not in text


def test_an_absorbed_customers_messages_show_on_the_survivor(org, customer, recall):
    other = CustomerFactory(owner=org.staff_a)
    mine = DeliveryFactory(customer=customer, variant=recall, sent_at=at(1))
    theirs = DeliveryFactory(customer=other, variant=recall, sent_at=at(2))
    customers_merge(survivor=customer, absorbed=[other])
    items = customer_timeline(customer, kinds=["delivery"]).items
    assert [i.id for i in items] == [theirs.pk, mine.pk]


def test_messages_cost_one_query_one_for_the_links_and_one_for_conversions(
    org, customer, recall, django_assert_num_queries
):
    Campaign.objects.filter(pk=recall.step.campaign_id).update(goal=Campaign.Goal.PAID_ORDER)
    for n in range(40):
        by_task = StepFactory(channel="staff_task", campaign__goal=Campaign.Goal.PAID_ORDER)
        delivery = DeliveryFactory(
            customer=customer,
            variant=VariantFactory(step=by_task) if n % 2 else recall,
            sent_at=at(n),
        )
        if n % 2:
            StaffTask.objects.create(
                delivery=delivery, staff=org.staff_a, customer=customer, text="x", due_at=at(n)
            )
        Conversion.objects.create(
            campaign_id=delivery.campaign_id,
            delivery=delivery,
            customer=customer,
            source=f"order:{n}",
            occurred_at=at(n),
            amount=Decimal("9.90"),
        )
    viewer = viewer_for(org.staff_a.user)
    with django_assert_num_queries(2):
        page = customer_timeline(customer, kinds=["delivery"])
    with django_assert_num_queries(3):
        page = customer_timeline(customer, kinds=["delivery"], viewer=viewer)
    # what the template reads is loaded: tasks with their staff, conversions
    with django_assert_num_queries(0):
        tasks = [i.detail.task for i in page.items if i.detail.task]
        assert len(tasks) == 15 and {t.staff.name for t in tasks} == {org.staff_a.name}
        assert {(i.detail.conversions, i.detail.converted_amount) for i in page.items} == {
            (1, Decimal("9.90"))
        }
        assert {i.row.campaign.name for i in page.items} >= {"春季召回"}
        assert {i.row.step.order for i in page.items} == {1, 2}
    # campaigns without a goal have nothing credited: no query for it
    Campaign.objects.update(goal="")
    with django_assert_num_queries(1):
        customer_timeline(customer, kinds=["delivery"])
