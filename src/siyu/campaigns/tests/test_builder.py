"""The campaign builder in the console: 5W form, steps and variants, saving, scheduling, the
audience preview; as plain form posts and as htmx partials."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.campaigns.models import Campaign, Delivery, Step, Variant
from siyu.campaigns.services import campaign_create, step_add
from siyu.core.models import AuditLog

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def english(settings):
    """Messages are checked in English here; the Chinese page is checked once below."""
    settings.LANGUAGE_CODE = "en"


def post_data(owner, segment=None, **overrides) -> dict:
    """A builder post: a broadcast with one SMS step and two variants (A/B 3:1)."""
    data = {
        "name": "双十一预热",
        "owner": str(owner.pk),
        "kind": "broadcast",
        "segment": str(segment.pk) if segment else "",
        "start_at": "",
        "end_at": "",
        "schedule": "",
        "trigger": "",
        "goal": "paid_order",
        "goal_days": "7",
        "goal_min_amount": "99.00",
        "cost": "500",
        "marketing": "on",
        "steps": "1",
        "s0-channel": "sms",
        "s0-delay": "0",
        "s0-delay_unit": "days",
        "s0-variants": "2",
        "s0v0-name": "A",
        "s0v0-weight": "3",
        "s0v0-body": "{customer.name}您好，预热开始",
        "s0v1-name": "B",
        "s0v1-weight": "1",
        "s0v1-body": "{customer.name}，专属券已到账",
    }
    data.update(overrides)
    return data


def errors_of(html: str, field: str) -> str:
    """The error text shown under a builder field."""
    match = re.search(rf'id="field-{field}".*?</label>', html, re.S)
    assert match, f"no field {field}"
    found = re.search(r'class="alert alert-error field-error">(.*?)</span>', match.group(0), re.S)
    return found.group(1) if found else ""


def test_the_builder_reads_in_chinese_by_default(org, login, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    html = login(org.admin).get(reverse("campaigns:new")).content.decode()
    for words in ("新建活动", "对谁", "何时", "在哪里、发什么", "为什么", "保存并排期"):
        assert words in html


def test_only_admins_and_managers_open_the_builder(org, login, client):
    assert client.get(reverse("campaigns:new")).status_code == 302  # to the login page
    assert login(org.staff_a).get(reverse("campaigns:new")).status_code == 404
    page = login(org.manager_a).get(reverse("campaigns:new"))
    assert page.status_code == 200
    html = page.content.decode()
    for section in ("builder-who", "builder-when", "builder-what", "builder-why"):
        assert f'id="{section}"' in html
    assert 'name="s0-channel"' in html and 'name="s0v0-body"' in html


def test_saving_a_draft_creates_the_campaign_with_its_steps_and_variants(
    org, login, segment, people
):
    client = login(org.admin)

    response = client.post(reverse("campaigns:new"), post_data(org.admin, segment))

    campaign = Campaign.objects.get(name="双十一预热")
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:edit", args=[campaign.pk])
    assert campaign.status == "draft" and campaign.segment == segment
    assert campaign.goal == "paid_order" and str(campaign.goal_min_amount) == "99.00"
    step = campaign.steps.get()
    assert step.channel == "sms"
    assert [(v.name, v.weight) for v in step.variants.all()] == [("A", 3), ("B", 1)]
    assert AuditLog.objects.filter(target_id=str(campaign.pk), action="create").exists()
    # The builder shows what was saved.
    html = client.get(response["Location"]).content.decode()
    assert "双十一预热" in html and "专属券已到账" in html and 'value="99.00"' in html


def test_steps_and_variants_are_added_and_removed_by_plain_posts_and_htmx(org, login, segment):
    client = login(org.admin)
    url = reverse("campaigns:new")

    plain = client.post(url, post_data(org.admin, segment, op="add_step"))
    assert plain.status_code == 200
    html = plain.content.decode()
    assert 'id="step-1"' in html and "<html" in html  # the whole page, nothing saved
    assert "专属券已到账" in html  # what was typed is kept
    assert not Campaign.objects.exists()

    partial = client.post(url, post_data(org.admin, segment, op="add_variant:0"), **HTMX)
    fragment = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in fragment
    assert fragment.startswith('\n<div id="steps"') or 'id="steps"' in fragment[:80]
    assert 'id="step-0-variant-2"' in fragment and 'name="s0-variants" value="3"' in fragment
    assert "{customer.name}您好，预热开始" in fragment  # posted values are kept

    removed = client.post(url, post_data(org.admin, segment, op="remove_variant:0:0"), **HTMX)
    fragment = removed.content.decode()
    assert 'name="s0-variants" value="1"' in fragment
    assert "专属券已到账" in fragment and "预热开始" not in fragment

    nothing = client.post(url, post_data(org.admin, segment, op="remove_step:7"), **HTMX)
    assert nothing.status_code == 200 and "That step does not exist." in nothing.content.decode()


def test_a_step_without_variants_is_refused_with_the_reason_above_the_steps(org, login, segment):
    data = post_data(org.admin, segment, **{"s0-variants": "0"})

    response = login(org.admin).post(reverse("campaigns:new"), data)

    assert response.status_code == 400
    assert "Step 1: A step needs at least one variant." in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_variant_without_text_or_script_is_refused(org, login, segment):
    data = post_data(org.admin, segment, **{"s0v1-body": "  "})

    response = login(org.admin).post(reverse("campaigns:new"), data)

    assert response.status_code == 400
    assert "Variant B needs a script or a text." in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"kind": "recurring", "schedule": "0 25 * * *"}, "schedule", "not valid"),
        ({"kind": "recurring", "schedule": "every monday"}, "schedule", "five fields"),
        ({"goal_days": "0"}, "goal_days", "greater than or equal to 1"),
        ({"cost": "-1"}, "cost", "greater than or equal to 0"),
        ({"kind": "fortnightly"}, "kind", "valid choice"),
        ({"start_at": "2026-13-40T10:00"}, "start_at", "valid date"),
        ({"end_at": "2026-01-01T10:00", "start_at": "2026-02-01T10:00"}, "end_at", "after"),
    ],
)
def test_bad_input_is_shown_under_its_field_never_a_500(
    org, login, segment, overrides, field, message
):
    response = login(org.admin).post(
        reverse("campaigns:new"), post_data(org.admin, segment, **overrides)
    )

    assert response.status_code == 400
    assert message in errors_of(response.content.decode(), field)
    assert not Campaign.objects.exists()


def test_scheduling_refusals_are_shown_under_the_field_and_the_draft_is_kept(org, login, segment):
    client = login(org.admin)

    response = client.post(reverse("campaigns:new"), post_data(org.admin, op="schedule"))

    html = response.content.decode()
    assert response.status_code == 400
    assert "Choose a segment." in errors_of(html, "segment")
    campaign = Campaign.objects.get()
    assert campaign.status == "draft"  # saved, not scheduled
    # The page now edits the saved draft, so posting again does not create a second one.
    assert f'action="{reverse("campaigns:edit", args=[campaign.pk])}"' in html

    zero = post_data(org.admin, segment, op="schedule", **{"s0v0-weight": "0", "s0v1-weight": "0"})
    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), zero)
    assert response.status_code == 400
    assert "Every step needs a variant with a weight." in response.content.decode()
    assert Campaign.objects.get().status == "draft"

    response = client.post(
        reverse("campaigns:edit", args=[campaign.pk]), post_data(org.admin, segment, op="schedule")
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.start_at is not None
    assert Campaign.objects.count() == 1


def test_a_triggered_campaign_needs_a_complete_trigger_but_no_segment(org, login):
    client = login(org.admin)
    data = post_data(org.admin, kind="triggered", trigger="event", op="schedule")

    refused = client.post(reverse("campaigns:new"), data)

    assert refused.status_code == 400
    assert "Choose the event type that triggers." in errors_of(refused.content.decode(), "trigger")
    assert not Campaign.objects.exists()
    # No trigger at all: the draft is saved, scheduling says what is missing.
    untriggered = client.post(reverse("campaigns:new"), {**data, "trigger": ""})
    assert "Choose a trigger." in errors_of(untriggered.content.decode(), "trigger")
    campaign = Campaign.objects.get()
    data["trigger_event_type"] = "coupon_claimed"
    done = client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    assert done.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.trigger == {"type": "event", "event_type": "coupon_claimed"}


def test_birthday_and_tag_triggers_are_built_with_their_parameter(org, login):
    from siyu.tags.models import Tag, TagGroup

    tag = Tag.objects.create(group=TagGroup.objects.create(name="兴趣"), name="母婴")
    client = login(org.admin)
    data = post_data(org.admin, kind="triggered", trigger="birthday", trigger_days_before="3")
    client.post(reverse("campaigns:new"), data)
    assert Campaign.objects.get().trigger == {"type": "birthday", "days_before": 3}

    data = {**data, "name": "打标签", "trigger": "tag_added", "trigger_tag": str(tag.pk)}
    client.post(reverse("campaigns:new"), data)
    assert Campaign.objects.get(name="打标签").trigger == {"type": "tag_added", "tag_id": tag.pk}
    bad = client.post(reverse("campaigns:new"), {**data, "trigger_days_before": "99"})
    assert bad.status_code == 400


def test_a_journey_keeps_its_step_delays(org, login, segment):
    data = post_data(
        org.admin,
        segment,
        kind="journey",
        steps="2",
        **{
            "s0-delay": "0",
            "s1-channel": "staff_task",
            "s1-delay": "3",
            "s1-delay_unit": "days",
            "s1-variants": "1",
            "s1v0-weight": "1",
            "s1v0-body": "第三天：回访",
        },
    )

    login(org.admin).post(reverse("campaigns:new"), data)

    steps = list(Step.objects.order_by("order").values_list("channel", "delay_minutes"))
    assert steps == [("sms", 0), ("staff_task", 3 * 24 * 60)]


def test_editing_a_scheduled_campaign_keeps_it_ready_or_changes_nothing(org, login, make_campaign):
    campaign = make_campaign("sms", now=timezone.now() + timedelta(days=1))
    assert campaign.status == "scheduled"
    client = login(org.admin)
    url = reverse("campaigns:edit", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert "{customer.name}您好" in page and "Save changes" in page

    broken = post_data(org.admin, campaign.segment, **{"s0v0-weight": "0", "s0v1-weight": "0"})
    assert client.post(url, broken).status_code == 400
    assert Variant.objects.filter(step__campaign=campaign).count() == 1  # unchanged

    ok = client.post(url, post_data(org.admin, campaign.segment, name="改过的名字"))
    assert ok.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.name == "改过的名字"
    assert Variant.objects.filter(step__campaign=campaign).count() == 2


def test_running_or_out_of_scope_campaigns_cannot_be_edited(org, login, make_campaign, segment):
    running = make_campaign("sms")
    Campaign.objects.filter(pk=running.pk).update(status="running")
    theirs = campaign_create(name="A店活动", kind="broadcast", owner=org.staff_a, segment=segment)

    admin = login(org.admin)
    assert admin.get(reverse("campaigns:edit", args=[running.pk])).status_code == 404
    assert (
        admin.post(reverse("campaigns:edit", args=[running.pk]), post_data(org.admin, segment))
    ).status_code == 404
    manager_b = login(org.manager_b)
    assert manager_b.get(reverse("campaigns:edit", args=[theirs.pk])).status_code == 404
    manager_a = login(org.manager_a)
    assert manager_a.get(reverse("campaigns:edit", args=[theirs.pk])).status_code == 200
    # A manager picks owners among their store's staff only.
    response = manager_a.post(
        reverse("campaigns:edit", args=[theirs.pk]), post_data(org.staff_b, segment)
    )
    assert response.status_code == 400
    assert "valid choice" in errors_of(response.content.decode(), "owner")


def test_the_preview_counts_the_audience_and_what_consent_address_and_caps_hold_back(
    org, login, segment, people, make_campaign, django_assert_max_num_queries
):
    people[0].consent_sms = False
    people[0].save(update_fields=["consent_sms"])
    people[1].identities.filter(kind="email").delete()
    # people[2] got a marketing message today: at the daily cap.
    earlier = make_campaign("sms")
    step = earlier.steps.get()
    Delivery.objects.create(
        campaign=earlier,
        step=step,
        customer=people[2],
        channel="sms",
        status="sent",
        planned_for=timezone.now(),
        sent_at=timezone.now(),
    )
    data = post_data(
        org.admin,
        segment,
        op="preview",
        steps="2",
        **{
            "s1-channel": "email",
            "s1-variants": "1",
            "s1v0-weight": "1",
            "s1v0-body": "邮件",
        },
    )
    client = login(org.admin)

    with django_assert_max_num_queries(12):
        response = client.post(reverse("campaigns:new"), data, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="card stack" id="campaign-preview"')
    assert 'id="preview-audience">3<' in html
    sms = re.search(r'data-channel="sms">(.*?)</tr>', html, re.S).group(1)
    email = re.search(r'data-channel="email">(.*?)</tr>', html, re.S).group(1)
    numbers = lambda row: re.findall(r">(\d+)<", row)  # noqa: E731
    # opted out, no consent, no address, at a cap, reachable
    assert numbers(sms) == ["1", "0", "0", "1", "1"]
    assert numbers(email) == ["0", "0", "1", "1", "1"]
    assert not Delivery.objects.exclude(pk__in=Delivery.objects.filter(customer=people[2])).exists()
    assert not Campaign.objects.filter(name="双十一预热").exists()

    transactional = client.post(reverse("campaigns:new"), {**data, "marketing": ""}, **HTMX)
    assert "frequency caps and quiet hours do not apply" in transactional.content.decode()


def test_an_existing_campaign_shows_its_preview_and_a_recurring_one_its_next_runs(
    org, login, segment, people
):
    campaign = campaign_create(
        name="每周一", kind="recurring", owner=org.admin, segment=segment, schedule="0 10 * * 1"
    )
    step_add(campaign=campaign, channel="sms", variants=[{"body": "周一好"}])
    client = login(org.admin)

    html = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()

    assert 'id="preview-audience">3<' in html
    runs = re.search(r'id="next-runs">(.*?)</p>', html, re.S).group(1)
    assert runs.count("10:00") == 5 and runs.count("Mon") == 5
    partial = client.post(
        reverse("campaigns:edit", args=[campaign.pk]),
        post_data(org.admin, segment, kind="recurring", schedule="0 9 * * *", op="runs"),
        **HTMX,
    )
    assert partial.content.decode().count("09:00") == 5
    bad = client.post(
        reverse("campaigns:edit", args=[campaign.pk]),
        post_data(org.admin, segment, kind="recurring", schedule="61 * * * *", op="runs"),
        **HTMX,
    )
    assert bad.status_code == 200 and "not valid" in bad.content.decode()


def test_the_builder_page_costs_the_same_queries_with_more_steps_and_variants(
    org, login, segment, people
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign = campaign_create(name="多步骤", kind="journey", owner=org.admin, segment=segment)
    step_add(campaign=campaign, channel="sms", variants=[{"body": "一"}])
    client = login(org.admin)
    url = reverse("campaigns:edit", args=[campaign.pk])
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200

    for n in range(3):
        step_add(
            campaign=campaign,
            channel="sms",
            delay_minutes=n * 1440,
            variants=[{"name": x, "body": x} for x in "ABC"],
        )
    with CaptureQueriesContext(connection) as large:
        html = client.get(url).content.decode()

    assert html.count('class="builder-variant') == 10
    assert len(large.captured_queries) == len(small.captured_queries)


def test_junk_in_any_builder_field_is_a_form_error_never_a_500(org, login, segment):
    client = login(org.admin)
    data = post_data(org.admin, segment, op="schedule")
    for junk in ("\x00", "-9" * 20):
        for name in list(data):
            response = client.post(reverse("campaigns:new"), {**data, name: junk})
            assert response.status_code in (200, 302, 400), (name, junk)
    for op in ("remove_step:" + "9" * 30, "add_variant:x", "remove_variant:0:-1", "explode"):
        assert client.post(reverse("campaigns:new"), {**data, "op": op}).status_code in (200, 400)


def test_an_archived_script_stays_choosable_where_a_variant_uses_it(org, login, segment):
    from siyu.content.tests.factories import ScriptFactory

    used = ScriptFactory(title="旧话术", body="老客回访", active=False)
    ScriptFactory(title="另一条旧话术", body="不再使用", active=False)
    campaign = campaign_create(name="回访", kind="broadcast", owner=org.admin, segment=segment)
    step_add(campaign=campaign, channel="sms", variants=[{"script": used}])
    client = login(org.admin)

    html = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()

    assert "旧话术" in html and "另一条旧话术" not in html
    data = post_data(
        org.admin, segment, **{"s0-variants": "1", "s0v0-body": "", "s0v0-script": str(used.pk)}
    )
    assert client.post(reverse("campaigns:edit", args=[campaign.pk]), data).status_code == 302
    assert Variant.objects.get(step__campaign=campaign).script == used


def test_a_variant_shares_a_published_material_and_keeps_an_archived_one_it_uses(
    org, login, segment
):
    from siyu.content.models import Material
    from siyu.content.tests.factories import MaterialFactory

    guide = MaterialFactory(title="春季护肤指南")
    draft = MaterialFactory(title="未发布的草稿", status=Material.Status.DRAFT)
    client = login(org.admin)
    data = post_data(
        org.admin,
        segment,
        **{
            "s0-variants": "1",
            "s0v0-body": "指南：{material.link}",
            "s0v0-material": str(guide.pk),
        },
    )

    assert client.post(reverse("campaigns:new"), data).status_code == 302
    campaign = Campaign.objects.get(name="双十一预热")
    assert Variant.objects.get(step__campaign=campaign).material == guide
    assert "未发布的草稿" not in client.get(reverse("campaigns:new")).content.decode()
    refused = client.post(reverse("campaigns:new"), {**data, "s0v0-material": str(draft.pk)})
    assert refused.status_code == 400 and Campaign.objects.count() == 1

    Material.objects.filter(pk=guide.pk).update(status=Material.Status.ARCHIVED)
    html = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert "春季护肤指南" in html
    assert client.post(reverse("campaigns:edit", args=[campaign.pk]), data).status_code == 302
