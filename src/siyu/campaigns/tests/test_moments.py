"""Moments posts (朋友圈): a step that asks each staff member for one post to the moments of
their customers in the audience — one task per staff member per occurrence, every customer's
delivery naming it, outside the frequency caps."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.campaigns.models import Delivery, StaffTask
from siyu.campaigns.selectors import campaign_audience_preview
from siyu.campaigns.services import (
    campaign_plan_due,
    campaign_schedule,
    deliveries_send_due,
    staff_task_done,
)
from siyu.campaigns.staff_tasks import staff_task_figures
from siyu.campaigns.tests.conftest import NOW
from siyu.content.models import Material, TrackedLink
from siyu.content.tests.factories import MaterialFactory, ScriptFactory
from siyu.core.errors import DomainError
from siyu.customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

POST = [{"name": "A", "body": "{staff.nickname}的{store.name}上新了，欢迎来店"}]


@pytest.fixture
def audience(people, org):
    """A's three customers (people) and two of A2's, all in Shanghai."""
    return people + [CustomerFactory(city="上海", owner=org.staff_a2) for _ in range(2)]


def sent(campaign):
    return list(Delivery.objects.filter(campaign=campaign).order_by("customer_id"))


def test_each_staff_member_gets_one_post_for_all_their_customers(
    make_campaign, audience, org, settings
):
    settings.SIYU_CAMPAIGN_BATCH = 2  # A's customers arrive in two batches: still one post
    campaign = make_campaign("staff_moments", variants=POST)
    campaign_plan_due(now=NOW)

    deliveries_send_due(now=NOW)
    deliveries_send_due(now=NOW + timedelta(minutes=1))

    tasks = {t.staff_id: t for t in StaffTask.objects.all()}
    assert set(tasks) == {org.staff_a.pk, org.staff_a2.pk}
    post = tasks[org.staff_a.pk]
    assert post.kind == "moments" and post.customer_id is None
    nickname = org.staff_a.nickname or org.staff_a.name
    assert post.text == f"{nickname}的静安店上新了，欢迎来店"
    rows = sent(campaign)
    assert [row.status for row in rows] == ["sent"] * 5
    by_staff = {row.customer_id: row.external_id for row in rows}
    assert {by_staff[c.pk] for c in audience[:3]} == {f"task-{post.pk}"}
    assert {by_staff[c.pk] for c in audience[3:]} == {f"task-{tasks[org.staff_a2.pk].pk}"}


def test_each_occurrence_of_a_recurring_step_is_a_new_post(make_campaign, audience):
    make_campaign("staff_moments", kind="recurring", schedule="0 10 * * *", variants=POST)
    campaign_plan_due(now=NOW)  # starts it
    campaign_plan_due(now=NOW + timedelta(minutes=1))
    deliveries_send_due(now=NOW + timedelta(minutes=1))
    campaign_plan_due(now=NOW + timedelta(days=1))
    deliveries_send_due(now=NOW + timedelta(days=1))

    occurrences = StaffTask.objects.values_list("occurrence", flat=True)
    assert sorted(occurrences) == ["20260630T0200"] * 2 + ["20260701T0200"] * 2


def test_a_post_neither_counts_against_the_caps_nor_is_held_by_them(
    make_campaign, people, sms_gateway
):
    def run(channel, **fields):
        campaign = make_campaign(channel, **fields)
        campaign_plan_due(now=NOW)
        deliveries_send_due(now=NOW, channels=[channel])
        return {row.status for row in sent(campaign)}

    assert run("staff_moments", variants=POST) == {"sent"}
    assert run("sms") == {"sent"}  # the post did not use up today's one message
    assert run("sms") == {"suppressed"}  # that message did
    assert run("staff_moments", variants=POST) == {"sent"}  # and it does not hold a post


@pytest.mark.parametrize(
    ("variants", "refusal"),
    [
        ([{"name": "A", "body": "{customer.name}，新品到店"}], "{customer.name}"),
        ([{"name": "A", "body": "{customer.city}的朋友们"}], "{customer.city}"),
        ([{"name": "A", "body": "新品"}, {"name": "B", "body": "新款"}], "一个版本"),
    ],
)
def test_scheduling_refuses_a_post_written_for_one_customer_or_split(
    make_campaign, variants, refusal
):
    campaign = make_campaign("staff_moments", variants=variants, draft=True)
    with pytest.raises(DomainError) as caught:
        campaign_schedule(campaign=campaign, now=NOW)
    assert refusal in caught.value.message


def test_a_script_with_customer_variables_is_refused_too(make_campaign):
    script = ScriptFactory(body="{customer.name}您好")
    campaign = make_campaign("staff_moments", variants=[{"script": script}], draft=True)
    with pytest.raises(DomainError):
        campaign_schedule(campaign=campaign, now=NOW)


def test_a_shared_material_is_the_staff_members_own_tracked_link(
    make_campaign, audience, org, settings
):
    settings.SIYU_PUBLIC_URL = "https://m.example.com/"
    article = MaterialFactory(kind=Material.Kind.ARTICLE, title="春季护肤指南", url="")
    variants = [{"name": "A", "body": "{material.title} {material.link}", "material": article}]
    make_campaign("staff_moments", variants=variants)
    campaign_plan_due(now=NOW)
    deliveries_send_due(now=NOW)

    links = {link.staff_id: link for link in TrackedLink.objects.all()}
    assert set(links) == {org.staff_a.pk, org.staff_a2.pk}
    assert {link.customer_id for link in links.values()} == {None}
    post = StaffTask.objects.get(staff=org.staff_a)
    code = re.search(r"/m/(\S+)", post.text).group(1)
    assert code == links[org.staff_a.pk].code


def test_my_tasks_shows_the_post_with_its_audience_and_it_counts_on_the_scorecard(
    make_campaign, audience, org, login, django_assert_num_queries
):
    campaign = make_campaign("staff_moments", variants=POST, now=timezone.now())
    campaign_plan_due(now=timezone.now())
    deliveries_send_due(channels=["staff_moments"])
    client = login(org.staff_a)

    # session, user, the viewer's staff row, the tasks, the posts' audiences
    with django_assert_num_queries(5):
        page = client.get(reverse("campaigns:tasks")).content.decode()

    assert page.count('class="task-text"') == 1
    assert "朋友圈" in page and "面向你的 3 位客户" in page and campaign.name in page
    post = StaffTask.objects.get(staff=org.staff_a)
    with pytest.raises(DomainError):
        staff_task_done(task=post, staff=org.staff_a2)
    assert client.post(reverse("campaigns:task_done", args=[post.pk])).status_code == 302
    figures = {f.staff_id: (f.on_time, f.open) for f in staff_task_figures(campaign=campaign)}
    assert figures == {org.staff_a.pk: (1, 0), org.staff_a2.pk: (0, 1)}


def test_the_builder_preview_holds_back_nobody_from_a_post_for_the_caps(
    make_campaign, people, segment, org, sms_gateway
):
    make_campaign("sms")
    campaign_plan_due(now=NOW)
    deliveries_send_due(now=NOW)  # everyone is at today's cap

    preview = campaign_audience_preview(
        kind="broadcast",
        segment=segment,
        owner=org.admin,
        channels=["sms", "staff_moments"],
        now=NOW + timedelta(minutes=1),
    )

    by_channel = {p.channel: (p.capped, p.reachable) for p in preview.channels}
    assert by_channel == {"sms": (3, 0), "staff_moments": (0, 3)}
