"""A/B tests: per-variant recipients, replies, conversions and revenue, the two-proportion
z-test, and promoting the winner (future plans, pending deliveries, script statistics, audit),
from the service, the console and the API."""

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from siyu.campaigns.attribution import conversions_attribute
from siyu.campaigns.experiments import (
    METHOD,
    two_proportion_z_test,
    variant_figures,
    variant_promote,
)
from siyu.campaigns.models import Campaign, Delivery, Variant
from siyu.campaigns.services import campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.commerce.models import Order
from siyu.content.models import Script, ScriptCategory
from siyu.core.api_keys import api_key_create
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event

pytestmark = pytest.mark.django_db


def test_the_z_test_matches_the_textbook_values():
    # 45/100 against 60/100: p̂ = 0.525, z = 0.15 / √(0.525·0.475·0.02) = 2.1240, p = 0.0337.
    result = two_proportion_z_test(45, 100, 60, 100)
    assert result.z == pytest.approx(2.1240, abs=1e-4)
    assert result.p_value == pytest.approx(0.03367, abs=1e-5)
    assert result.significant
    assert two_proportion_z_test(60, 100, 45, 100).z == pytest.approx(-2.1240, abs=1e-4)
    assert not two_proportion_z_test(10, 100, 12, 100).significant
    # Nothing to compare: an empty group, or the same all-or-nothing outcome.
    assert two_proportion_z_test(0, 0, 3, 10) is None
    assert two_proportion_z_test(0, 50, 0, 50) is None
    assert two_proportion_z_test(50, 50, 50, 50) is None
    assert math.erfc(0) == 1  # the p-value of z = 0 is 1, no scipy needed


@pytest.fixture
def scripts():
    category = ScriptCategory.objects.create(name="开场")
    return (
        Script.objects.create(category=category, title="A", body="{customer.name}，新品到了"),
        Script.objects.create(category=category, title="B", body="{customer.name}，送您一张券"),
    )


@pytest.fixture
def ab_journey(make_campaign, org, scripts):
    """A journey whose one SMS step splits 50/50 between two scripts, planned for 120
    Shanghai customers and sent at NOW; goal: a paid order within 7 days."""
    Customer.objects.bulk_create(
        CustomerFactory.build(city="上海", phone=f"+8613800{n:06d}", first_seen_at=NOW)
        for n in range(120)
    )
    campaign = make_campaign(
        "sms",
        kind="journey",
        variants=[{"name": "A", "script": scripts[0]}, {"name": "B", "script": scripts[1]}],
        goal=Campaign.Goal.PAID_ORDER,
        goal_days=7,
    )
    campaign_plan_due(now=NOW)  # starts it
    campaign_plan_due(now=NOW + timedelta(minutes=1))  # enrolls and plans
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=NOW)
    return campaign


def by_variant(campaign):
    groups: dict[str, list[int]] = {"A": [], "B": []}
    for name, customer in Delivery.objects.filter(campaign=campaign).values_list(
        "variant__name", "customer_id"
    ):
        groups[name].append(customer)
    return {k: sorted(v) for k, v in groups.items()}


def paid(customer_id, at, amount):
    return Order.objects.create(
        channel=ChannelFactory(code="shop"),
        external_id=f"O{customer_id}-{at:%d%H%M%S}",
        customer_id=customer_id,
        status=Order.Status.PAID,
        amount=Decimal(amount),
        paid_at=at,
    )


def test_figures_per_variant_with_replies_conversions_revenue_and_the_test(
    ab_journey, settings, django_assert_max_num_queries
):
    groups = by_variant(ab_journey)
    a, b = groups["A"], groups["B"]
    assert len(a) + len(b) == 120 and min(len(a), len(b)) > 40
    for customer in a[:3]:
        paid(customer, NOW + timedelta(days=1), "100")
    for customer in b[:20]:
        paid(customer, NOW + timedelta(days=2), "50")
    paid(b[0], NOW + timedelta(days=3), "30")  # a second order: revenue, not a second convert
    reply = settings.SIYU_CAMPAIGN_REPLY_EVENT
    Event.objects.create(customer_id=a[0], type=reply, occurred_at=NOW + timedelta(hours=1))
    Event.objects.create(customer_id=a[0], type=reply, occurred_at=NOW + timedelta(hours=2))
    Event.objects.create(customer_id=a[1], type=reply, occurred_at=NOW + timedelta(hours=49))
    Event.objects.create(customer_id=a[2], type=reply, occurred_at=NOW - timedelta(hours=1))
    Event.objects.create(customer_id=b[0], type=reply, occurred_at=NOW + timedelta(hours=47))
    Event.objects.create(customer_id=b[1], type="other", occurred_at=NOW + timedelta(hours=1))
    conversions_attribute(now=NOW + timedelta(days=4))

    with django_assert_max_num_queries(3):
        (test,) = variant_figures(ab_journey)

    control, other = test.variants
    assert (control.variant.name, control.sent, control.replied) == ("A", len(a), 1)
    assert (control.converted, control.conversions, control.revenue) == (3, 3, Decimal(300))
    assert (other.variant.name, other.sent, other.replied) == ("B", len(b), 1)
    assert (other.converted, other.conversions, other.revenue) == (20, 21, Decimal(1030))
    expected = two_proportion_z_test(3, len(a), 20, len(b))
    assert control.test is None
    assert other.test == expected and other.test.significant
    assert test.method == METHOD == "two-proportion z-test"
    assert test.leader is other


def test_promoting_the_winner_sends_only_it_and_records_the_result_once(
    ab_journey, scripts, org, settings
):
    a_script, b_script = scripts
    groups = by_variant(ab_journey)
    reply = settings.SIYU_CAMPAIGN_REPLY_EVENT
    Event.objects.create(customer_id=groups["B"][0], type=reply, occurred_at=NOW)
    Event.objects.create(
        customer_id=groups["B"][1], type=reply, occurred_at=NOW + timedelta(hours=1)
    )
    step = ab_journey.steps.get()
    a, b = step.variants.order_by("name")
    # One A delivery not sent yet: it switches to B.
    waiting = Delivery.objects.filter(variant=a).first()
    Delivery.objects.filter(pk=waiting.pk).update(status="pending", sent_at=None)

    variant_promote(step=step, variant=b, actor=org.admin.user, ip="10.0.0.1")

    assert dict(Variant.objects.filter(step=step).values_list("name", "weight")) == {
        "A": 0,
        "B": 1,
    }
    assert Delivery.objects.get(pk=waiting.pk).variant_id == b.pk
    assert Delivery.objects.filter(variant=a).count() == len(groups["A"]) - 1  # history kept
    a_script.refresh_from_db()
    b_script.refresh_from_db()
    assert (a_script.usage_count, a_script.sent_count, a_script.reply_count) == (
        len(groups["A"]) - 1,
        len(groups["A"]) - 1,
        0,
    )
    assert (b_script.usage_count, b_script.sent_count, b_script.reply_count) == (
        len(groups["B"]),
        len(groups["B"]),
        1,
    )
    step.refresh_from_db()
    assert step.ab_result["winner"] == b.pk and step.ab_result["method"] == METHOD
    audit = AuditLog.objects.get(target_type="campaigns.campaign", target_id=str(ab_journey.pk))
    assert audit.actor == org.admin.user and "promoted variant B of step 1" in audit.summary
    assert audit.detail["pending_switched"] == 1

    # New customers entering the journey get only the winner.
    for n in range(6):
        CustomerFactory(city="上海", phone=f"+8613700{n:06d}")
    campaign_plan_due(now=NOW + timedelta(minutes=2))
    fresh = Delivery.objects.filter(campaign=ab_journey, planned_for=NOW + timedelta(minutes=2))
    assert fresh.count() == 6 and set(fresh.values_list("variant_id", flat=True)) == {b.pk}

    # Promoting again adds only what is new to the scripts: nothing twice.
    Delivery.objects.filter(campaign=ab_journey).update(status="sent", sent_at=NOW)
    variant_promote(step=step, variant=b, actor=org.admin.user)
    b_script.refresh_from_db()
    a_script.refresh_from_db()
    assert b_script.usage_count == b_script.sent_count == len(groups["B"]) + 1 + 6
    assert a_script.usage_count == a_script.sent_count == len(groups["A"]) - 1


def test_promote_refuses_what_makes_no_sense(make_campaign, ab_journey, org, people):
    step = ab_journey.steps.get()
    single = make_campaign("sms")
    single_step = single.steps.get()
    with pytest.raises(DomainError):
        variant_promote(step=step, variant=single_step.variants.get(), actor=org.admin.user)
    with pytest.raises(DomainError):
        variant_promote(step=single_step, variant=single_step.variants.get())
    ab_journey.status = Campaign.Status.CANCELLED
    ab_journey.save(update_fields=["status"])
    with pytest.raises(DomainError):
        variant_promote(step=step, variant=step.variants.first())
    assert set(Variant.objects.filter(step=step).values_list("weight", flat=True)) == {1}


def test_the_campaign_page_shows_the_test_and_promotes(ab_journey, org, login):
    step = ab_journey.steps.get()
    b = step.variants.get(name="B")
    client = login(org.staff_a)
    # Staff A does not see the admin's campaign: no page, no promotion.
    url = reverse("campaigns:variant_promote", args=[ab_journey.pk, b.pk])
    assert client.post(url).status_code == 404
    client = login(org.admin)

    page = client.get(reverse("campaigns:detail", args=[ab_journey.pk])).content.decode()

    assert 'id="campaign-ab"' in page and "双比例 z 检验" in page  # the method, named
    assert page.count('class="inline-form"') >= 2 and url in page
    assert client.get(url).status_code == 405
    other = reverse("campaigns:variant_promote", args=[ab_journey.pk + 1000, b.pk])
    assert client.post(other).status_code == 404
    assert client.post(url).status_code == 302
    assert Variant.objects.get(step=step, name="A").weight == 0
    page = client.get(reverse("campaigns:detail", args=[ab_journey.pk])).content.decode()
    assert url not in page  # the winner shows as promoted instead of a button


def test_the_api_reads_the_results_and_promotes_with_an_admin_key(client, ab_journey, org):
    step = ab_journey.steps.get()
    b = step.variants.get(name="B")
    _, admin = api_key_create(actor=org.admin.user, name="ops", scopes=["admin"])
    _, read = api_key_create(actor=org.admin.user, name="bi", scopes=["read"])
    base = f"/api/v1/campaigns/{ab_journey.pk}"

    results = client.get(f"{base}/ab/results", headers={"Authorization": f"Bearer {read}"})
    refused = client.post(
        f"{base}/steps/{step.pk}/promote",
        {"variant_id": b.pk},
        content_type="application/json",
        headers={"Authorization": f"Bearer {read}"},
    )
    promote = client.post(
        f"{base}/steps/{step.pk}/promote",
        {"variant_id": b.pk},
        content_type="application/json",
        headers={"Authorization": f"Bearer {admin}"},
    )
    missing = client.post(
        f"{base}/steps/{step.pk}/promote",
        {"variant_id": b.pk + 1000},
        content_type="application/json",
        headers={"Authorization": f"Bearer {admin}"},
    )
    bad = client.post(
        f"{base}/steps/{step.pk}/promote",
        {"variant_id": "B"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {admin}"},
    )

    assert results.status_code == 200
    (test,) = results.json()
    assert test["method"] == "two-proportion z-test" and test["promoted_variant_id"] is None
    assert [v["name"] for v in test["variants"]] == ["A", "B"]
    assert sum(v["sent"] for v in test["variants"]) == 120
    assert refused.status_code == 403
    assert promote.status_code == 200 and promote.json()["promoted_variant_id"] == b.pk
    assert [v["weight"] for v in promote.json()["variants"]] == [0, 1]
    assert missing.status_code == 404 and bad.status_code == 422
    assert AuditLog.objects.filter(detail__via="API key ops").count() == 1
