from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from siyu.campaigns.models import Campaign, Delivery, JourneyEnrollment
from siyu.campaigns.planner import variant_for
from siyu.campaigns.services import campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.commerce.models import Order
from siyu.customers.models import Identity
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event
from siyu.segments.models import SnapshotMember

pytestmark = pytest.mark.django_db


def deliveries(campaign, **filters):
    return Delivery.objects.filter(campaign=campaign, **filters)


def test_broadcast_plans_each_customer_once_however_often_the_planner_runs(make_campaign, people):
    campaign = make_campaign("sms")

    first = campaign_plan_due(now=NOW)
    campaign_plan_due(now=NOW + timedelta(minutes=1))
    campaign_plan_due(now=NOW + timedelta(minutes=2))

    assert first.planned == {campaign.pk: 3}
    assert deliveries(campaign).count() == 3
    assert set(deliveries(campaign).values_list("customer_id", flat=True)) == {c.pk for c in people}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.started_at == NOW


def test_broadcast_replanned_by_hand_inserts_nothing_new(make_campaign, people):
    from siyu.campaigns.planner import _plan_all_steps

    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    campaign.refresh_from_db()
    audience = (
        "SELECT s.customer_id AS customer_id, %s AS occurrence FROM "
        "segments_snapshotmember s WHERE s.snapshot_id = %s",
        ["", campaign.snapshot_id],
    )

    again = _plan_all_steps(campaign, audience, NOW, NOW)  # ON CONFLICT DO NOTHING

    assert again == 0
    assert deliveries(campaign).count() == 3


def test_broadcast_freezes_its_audience_when_it_starts(make_campaign, people):
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    CustomerFactory(city="上海", phone="+8613900000999")  # joins the segment too late

    campaign_plan_due(now=NOW + timedelta(minutes=1))

    campaign.refresh_from_db()
    assert campaign.snapshot.size == 3
    assert SnapshotMember.objects.filter(snapshot=campaign.snapshot).count() == 3
    assert deliveries(campaign).count() == 3


def test_a_scheduled_broadcast_waits_for_its_start(make_campaign, people):
    campaign = make_campaign("sms", start_at=NOW + timedelta(hours=1))

    campaign_plan_due(now=NOW)
    assert deliveries(campaign).count() == 0
    campaign_plan_due(now=NOW + timedelta(hours=1))
    assert deliveries(campaign).count() == 3


def test_opt_out_and_missing_addresses_are_suppressed_with_the_reason(make_campaign, people):
    people[0].consent_email = False
    people[0].save(update_fields=["consent_email"])
    Identity.objects.filter(customer=people[1], kind=Identity.Kind.EMAIL).delete()
    people[2].phone = ""
    people[2].save(update_fields=["phone"])
    campaign = make_campaign("email", "sms")

    campaign_plan_due(now=NOW)

    email = dict(deliveries(campaign, channel="email").values_list("customer_id", "reason"))
    sms = dict(deliveries(campaign, channel="sms").values_list("customer_id", "reason"))
    assert email == {people[0].pk: "opt_out", people[1].pk: "no_address", people[2].pk: ""}
    assert sms == {people[0].pk: "", people[1].pk: "", people[2].pk: "no_address"}
    assert deliveries(campaign, status="suppressed").count() == 3
    assert deliveries(campaign, status="pending").count() == 3


def test_opt_in_mode_needs_an_explicit_yes(make_campaign, people, settings):
    settings.SIYU_CAMPAIGN_CONSENT = "opt_in"
    people[0].consent_sms = True
    people[0].save(update_fields=["consent_sms"])
    campaign = make_campaign("sms")

    campaign_plan_due(now=NOW)

    reasons = dict(deliveries(campaign).values_list("customer_id", "reason"))
    assert reasons == {people[0].pk: "", people[1].pk: "no_consent", people[2].pk: "no_consent"}


def test_variants_split_by_weight_and_stay_the_same_for_a_customer(make_campaign, org):
    for n in range(400):
        CustomerFactory(city="上海", phone=f"+8613800{n:06d}")
    campaign = make_campaign(
        "sms", variants=[{"name": "A", "body": "甲", "weight": 3}, {"name": "B", "body": "乙"}]
    )

    campaign_plan_due(now=NOW)

    step = campaign.steps.get()
    variants = list(step.variants.order_by("id"))
    rows = list(deliveries(campaign).values_list("customer_id", "variant_id"))
    shares = Counter(variant for _, variant in rows)
    assert 0.65 < shares[variants[0].pk] / len(rows) < 0.85  # 3:1 → 75 %
    # SQL and Python agree on every customer's arm, so any later enrollment matches.
    assert all(variant_for(c, step.pk, variants).pk == v for c, v in rows)


def test_a_broadcast_starting_in_quiet_hours_is_postponed_to_nine(make_campaign, people):
    night = datetime(2026, 6, 30, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    campaign = make_campaign("sms", now=night)

    campaign_plan_due(now=night)

    nine = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 09:00 the next morning
    assert set(deliveries(campaign).values_list("planned_for", "postponed", "status")) == {
        (nine, "quiet_hours", "pending")
    }


def test_transactional_campaigns_ignore_quiet_hours(make_campaign, people):
    night = datetime(2026, 6, 30, 14, 30, tzinfo=UTC)
    campaign = make_campaign("sms", now=night, marketing=False)

    campaign_plan_due(now=night)

    assert set(deliveries(campaign).values_list("planned_for", flat=True)) == {night}


def test_journey_enrolls_members_and_plans_each_step_after_its_delay(make_campaign, people):
    campaign = make_campaign("sms", "email", kind="journey", delays=[0, 60 * 24])
    campaign_plan_due(now=NOW)  # starts it
    later = NOW + timedelta(minutes=1)

    campaign_plan_due(now=later)
    newcomer = CustomerFactory(city="上海", phone="+8613900000555")
    campaign_plan_due(now=later + timedelta(minutes=1))

    assert JourneyEnrollment.objects.filter(campaign=campaign).count() == 4
    sms, email = campaign.steps.order_by("order")
    assert set(deliveries(campaign, step=email).values_list("customer_id", "planned_for")) == {
        *((c.pk, later + timedelta(days=1)) for c in people),
        (newcomer.pk, later + timedelta(minutes=1, days=1)),
    }
    assert deliveries(campaign, step=sms).count() == 4


def test_journey_exits_on_goal_or_leaving_the_segment_and_cancels_what_is_left(
    make_campaign, people
):
    campaign = make_campaign(
        "sms",
        "sms",
        kind="journey",
        delays=[0, 60 * 24 * 3],
        goal=Campaign.Goal.PAID_ORDER,
        goal_min_amount=100,
    )
    campaign_plan_due(now=NOW)
    campaign_plan_due(now=NOW + timedelta(minutes=1))
    buyer, mover, small_buyer = people
    Order.objects.create(
        channel=ChannelFactory(code="tmall"),
        external_id="T1",
        customer=buyer,
        status=Order.Status.PAID,
        amount=199,
        paid_at=NOW + timedelta(hours=1),
    )
    Order.objects.create(
        channel=ChannelFactory(code="tmall"),
        external_id="T2",
        customer=small_buyer,
        status=Order.Status.PAID,
        amount=20,
        paid_at=NOW + timedelta(hours=1),
    )
    mover.city = "北京"
    mover.save(update_fields=["city"])

    campaign_plan_due(now=NOW + timedelta(hours=2))

    exits = dict(
        JourneyEnrollment.objects.filter(campaign=campaign).values_list(
            "customer_id", "exit_reason"
        )
    )
    assert exits == {buyer.pk: "goal", mover.pk: "left_segment", small_buyer.pk: ""}
    statuses = Counter(deliveries(campaign).values_list("customer_id", "status"))
    assert statuses[(buyer.pk, "cancelled")] == 2
    assert statuses[(mover.pk, "cancelled")] == 2
    assert statuses[(small_buyer.pk, "pending")] == 2


def test_recurring_plans_one_occurrence_per_tick(make_campaign, people):
    # Every day at 10:00 Shanghai time (02:00 UTC).
    campaign = make_campaign("sms", kind="recurring", schedule="0 10 * * *")
    campaign_plan_due(now=NOW - timedelta(minutes=5))  # starts it at 09:55

    campaign_plan_due(now=NOW)
    campaign_plan_due(now=NOW + timedelta(minutes=1))
    campaign_plan_due(now=NOW + timedelta(days=1, minutes=3))  # a late worker the next day

    occurrences = Counter(deliveries(campaign).values_list("occurrence", flat=True))
    assert occurrences == {"20260630T0200": 3, "20260701T0200": 3}


def test_an_event_trigger_plans_once_per_event_and_never_for_history(make_campaign, people):
    campaign = make_campaign(
        "sms",
        kind="triggered",
        segment=None,
        trigger={"type": "event", "event_type": "coupon_claimed"},
    )
    Event.objects.create(
        customer=people[0], type="coupon_claimed", occurred_at=NOW - timedelta(days=1)
    )
    campaign_plan_due(now=NOW)  # starts it
    first = Event.objects.create(
        customer=people[1], type="coupon_claimed", occurred_at=NOW + timedelta(seconds=30)
    )
    Event.objects.create(customer=people[2], type="other", occurred_at=NOW + timedelta(seconds=30))

    campaign_plan_due(now=NOW + timedelta(minutes=1))
    campaign_plan_due(now=NOW + timedelta(minutes=2))  # overlapping window: nothing twice
    second = Event.objects.create(
        customer=people[1], type="coupon_claimed", occurred_at=NOW + timedelta(minutes=2, seconds=5)
    )
    campaign_plan_due(now=NOW + timedelta(minutes=3))

    assert sorted(deliveries(campaign).values_list("customer_id", "occurrence")) == [
        (people[1].pk, f"e{first.pk}"),
        (people[1].pk, f"e{second.pk}"),
    ]


def test_a_days_after_joining_trigger_fires_once_on_the_day(make_campaign, org):
    campaign = make_campaign(
        "sms", kind="triggered", segment=None, trigger={"type": "joined", "days": 3}
    )
    campaign_plan_due(now=NOW)
    joined = CustomerFactory(
        phone="+8613900000777", first_seen_at=NOW - timedelta(days=3) + timedelta(seconds=20)
    )
    CustomerFactory(phone="+8613900000778", first_seen_at=NOW - timedelta(days=2))

    campaign_plan_due(now=NOW + timedelta(minutes=1))
    campaign_plan_due(now=NOW + timedelta(minutes=2))

    assert list(deliveries(campaign).values_list("customer_id", "occurrence")) == [
        (joined.pk, "joined")
    ]


def test_a_finished_broadcast_completes(make_campaign, people):
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    deliveries(campaign).update(status="sent", sent_at=NOW)

    summary = campaign_plan_due(now=NOW + timedelta(minutes=1))

    campaign.refresh_from_db()
    assert summary.completed == [campaign.pk]
    assert campaign.status == Campaign.Status.COMPLETED
