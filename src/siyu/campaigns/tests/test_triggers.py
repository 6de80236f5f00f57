"""Triggered campaigns on a tag being added, a birthday and a membership anniversary: each
fires exactly once per occurrence, in the organisation's zone, however often the planner runs."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from siyu.campaigns.models import Delivery
from siyu.campaigns.services import campaign_plan_due, campaign_schedule
from siyu.campaigns.tests.conftest import NOW
from siyu.campaigns.triggers import TRIGGER_KINDS, trigger_validate
from siyu.core.errors import DomainError
from siyu.customers.tests.factories import CustomerFactory
from siyu.tags.models import Source
from siyu.tags.services import tags_assign, tags_remove
from siyu.tags.tests.factories import TagFactory

pytestmark = pytest.mark.django_db


def planned(campaign):
    return sorted(
        Delivery.objects.filter(campaign=campaign).values_list("customer_id", "occurrence")
    )


def run_every_minute(start: datetime, minutes: int) -> None:
    for n in range(minutes):
        campaign_plan_due(now=start + timedelta(minutes=n))


def test_a_tag_added_trigger_fires_once_per_addition_and_never_for_history(make_campaign, org):
    vip, other = TagFactory(name="VIP"), TagFactory(name="老客")
    before, tagged, untagged = CustomerFactory(), CustomerFactory(), CustomerFactory()
    tags_assign(customer_ids=[before.pk], tag=vip, source=Source.MANUAL)
    campaign = make_campaign(
        "sms",
        kind="triggered",
        segment=None,
        trigger={"type": "tag_added", "tag_id": vip.pk},
        now=timezone.now(),
    )
    campaign_plan_due(now=timezone.now())  # starts it: what came before does not count

    tags_assign(customer_ids=[tagged.pk], tag=vip, source=Source.MANUAL)
    tags_assign(customer_ids=[untagged.pk], tag=other, source=Source.MANUAL)
    tags_remove(customer_ids=[before.pk], tag=vip, source=Source.MANUAL)  # a removal is not it
    run_every_minute(timezone.now() + timedelta(seconds=1), 3)  # overlapping windows
    first = planned(campaign)
    # Taken off and put on again: a new addition, a new message.
    tags_remove(customer_ids=[tagged.pk], tag=vip, source=Source.MANUAL)
    tags_assign(customer_ids=[tagged.pk], tag=vip, source=Source.MANUAL)
    run_every_minute(timezone.now() + timedelta(seconds=1), 2)

    assert [customer for customer, _ in first] == [tagged.pk]
    assert first[0][1].startswith("t")
    again = planned(campaign)
    assert [customer for customer, _ in again] == [tagged.pk, tagged.pk]
    assert len({occurrence for _, occurrence in again}) == 2


def test_a_birthday_trigger_fires_once_a_year_on_the_local_day(make_campaign, org):
    # 10:00 on 30 June in Shanghai; the planner then runs all day and the next morning.
    today = CustomerFactory(birthday=date(1990, 6, 30))
    tomorrow = CustomerFactory(birthday=date(1985, 7, 1))
    yesterday = CustomerFactory(birthday=date(1990, 6, 29))
    CustomerFactory(birthday=None)
    campaign = make_campaign("sms", kind="triggered", segment=None, trigger={"type": "birthday"})
    campaign_plan_due(now=NOW)
    run_every_minute(NOW + timedelta(minutes=1), 5)
    assert planned(campaign) == [(today.pk, "b2026")]

    # 23:59 in Shanghai is still the 30th; 00:00 (16:00 UTC) is the 1st of July.
    campaign_plan_due(now=datetime(2026, 6, 30, 15, 59, tzinfo=UTC))
    assert planned(campaign) == [(today.pk, "b2026")]
    run_every_minute(datetime(2026, 6, 30, 16, 0, tzinfo=UTC), 3)
    assert planned(campaign) == sorted([(today.pk, "b2026"), (tomorrow.pk, "b2026")])

    # A year later, the same customer again, once.
    run_every_minute(datetime(2027, 6, 29, 2, 0, tzinfo=UTC), 3)
    run_every_minute(datetime(2027, 6, 30, 2, 0, tzinfo=UTC), 3)
    assert planned(campaign) == sorted(
        [
            (today.pk, "b2026"),
            (tomorrow.pk, "b2026"),
            (yesterday.pk, "b2027"),
            (today.pk, "b2027"),
        ]
    )


def test_a_birthday_trigger_days_before_and_feb_29(make_campaign, org):
    leap = CustomerFactory(birthday=date(2000, 2, 29))
    feb_28 = CustomerFactory(birthday=date(1999, 2, 28))
    start = datetime(2027, 2, 20, 2, 0, tzinfo=UTC)
    campaign = make_campaign(
        "sms",
        kind="triggered",
        segment=None,
        trigger={"type": "birthday", "days_before": 3},
        now=start,
    )
    campaign_plan_due(now=start)
    # 2027 is not a leap year: the Feb 29 birthday is kept on Feb 28, three days early.
    run_every_minute(datetime(2027, 2, 24, 2, 0, tzinfo=UTC), 2)
    assert planned(campaign) == []
    run_every_minute(datetime(2027, 2, 25, 2, 0, tzinfo=UTC), 2)
    assert planned(campaign) == sorted([(leap.pk, "b2027"), (feb_28.pk, "b2027")])
    # 2028 is: each on their own day.
    run_every_minute(datetime(2028, 2, 25, 2, 0, tzinfo=UTC), 2)
    assert (feb_28.pk, "b2028") in planned(campaign)
    assert (leap.pk, "b2028") not in planned(campaign)
    run_every_minute(datetime(2028, 2, 26, 2, 0, tzinfo=UTC), 2)
    assert (leap.pk, "b2028") in planned(campaign)


def test_a_worker_down_for_a_day_still_sends_yesterdays_birthdays(make_campaign, org):
    missed = CustomerFactory(birthday=date(1990, 7, 1))
    campaign = make_campaign("sms", kind="triggered", segment=None, trigger={"type": "birthday"})
    run_every_minute(NOW, 2)
    # No run at all on 1 July; the next is on the 2nd.
    campaign_plan_due(now=datetime(2026, 7, 2, 2, 0, tzinfo=UTC))
    assert planned(campaign) == [(missed.pk, "b2026")]


def test_an_anniversary_trigger_skips_the_joining_year_and_reads_the_local_day(make_campaign, org):
    # 20:00 UTC on 30 June is 04:00 on 1 July in Shanghai: the anniversary is 1 July.
    member = CustomerFactory(first_seen_at=datetime(2024, 6, 30, 20, 0, tzinfo=UTC))
    joined_today = CustomerFactory(first_seen_at=datetime(2026, 6, 30, 22, 0, tzinfo=UTC))
    june_30 = CustomerFactory(first_seen_at=datetime(2024, 6, 30, 3, 0, tzinfo=UTC))
    campaign = make_campaign(
        "sms",
        kind="triggered",
        segment=None,
        trigger={"type": "anniversary", "days_before": 1},
    )
    run_every_minute(NOW, 3)  # 30 June: one day before 1 July
    assert planned(campaign) == [(member.pk, "a2026")]
    run_every_minute(datetime(2027, 6, 29, 2, 0, tzinfo=UTC), 3)
    assert (june_30.pk, "a2027") in planned(campaign)
    run_every_minute(datetime(2027, 6, 30, 2, 0, tzinfo=UTC), 3)
    assert planned(campaign) == sorted(
        [
            (member.pk, "a2026"),
            (june_30.pk, "a2027"),
            (member.pk, "a2027"),
            (joined_today.pk, "a2027"),
        ]
    )


def test_the_trigger_kinds_validate_in_one_place(org):
    tag = TagFactory()
    assert set(TRIGGER_KINDS) == {
        "event",
        "stage",
        "tag_added",
        "joined",
        "birthday",
        "anniversary",
    }
    assert trigger_validate({"type": "birthday", "days_before": "7", "x": 1}) == {
        "type": "birthday",
        "days_before": 7,
    }
    assert trigger_validate({"type": "anniversary"}) == {"type": "anniversary", "days_before": 0}
    assert trigger_validate({"type": "tag_added", "tag_id": str(tag.pk)}) == {
        "type": "tag_added",
        "tag_id": tag.pk,
    }
    assert trigger_validate({"type": "stage", "to": "member"})["to"] == "member"
    bad = [
        (None, "Choose a trigger."),
        ({"type": "lunar"}, "Choose a trigger."),
        ({"type": "event", "event_type": " "}, "Choose the event type that triggers."),
        ({"type": "stage", "to": "nobody"}, "Choose the stage that triggers."),
        ({"type": "tag_added", "tag_id": tag.pk + 1000}, "Choose the tag that triggers."),
        ({"type": "tag_added", "tag_id": True}, "Choose the tag that triggers."),
        ({"type": "joined", "days": -1}, "Days after joining must be 0 to 3650."),
        ({"type": "birthday", "days_before": 61}, "Days before must be 0 to 60."),
        ({"type": "birthday", "days_before": 1.5}, "Days before must be 0 to 60."),
    ]
    for trigger, message in bad:
        with pytest.raises(ValidationError) as caught, translation.override("en"):
            trigger_validate(trigger)
        assert caught.value.messages == [message], trigger


def test_scheduling_refuses_a_bad_trigger_and_keeps_the_cleaned_one(make_campaign, org):
    campaign = make_campaign(
        "sms",
        kind="triggered",
        segment=None,
        draft=True,
        trigger={"type": "birthday", "days_before": 99},
    )
    with pytest.raises(DomainError) as caught, translation.override("en"):
        campaign_schedule(campaign=campaign, now=NOW)
    assert (caught.value.field, caught.value.message) == ("trigger", "Days before must be 0 to 60.")

    campaign.trigger = {"type": "birthday", "days_before": "2", "junk": True}
    campaign.save(update_fields=["trigger"])
    campaign_schedule(campaign=campaign, now=NOW)
    campaign.refresh_from_db()
    assert campaign.trigger == {"type": "birthday", "days_before": 2}
