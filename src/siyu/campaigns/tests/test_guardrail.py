from datetime import timedelta

import pytest

from siyu.campaigns.guardrail import campaigns_guardrail_check
from siyu.campaigns.models import Campaign, Delivery
from siyu.campaigns.services import campaign_plan_due, campaign_resume
from siyu.campaigns.tests.conftest import NOW
from siyu.customers.models import Relationship
from siyu.customers.tests.factories import CustomerFactory
from siyu.events.models import Event
from siyu.notifications.models import Notification

pytestmark = pytest.mark.django_db
SENT_AT = NOW + timedelta(hours=1)
CHECK = NOW + timedelta(hours=5)


@pytest.fixture
def ten_sent(settings, make_campaign, org):
    """A running campaign sent to ten customers, each a friend of staff A; 10 % threshold."""
    settings.SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS = 10
    settings.SIYU_CAMPAIGN_GUARDRAIL_BASIS_POINTS = 1000
    customers = [CustomerFactory(city="上海", phone=f"+8613700000{n:03d}") for n in range(10)]
    for customer in customers:
        Relationship.objects.create(customer=customer, staff=org.staff_a, added_at=NOW)
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=SENT_AT)
    return campaign, customers


def lose(customer, staff, *, at=SENT_AT + timedelta(hours=1), by="customer"):
    Relationship.objects.filter(customer=customer, staff=staff).update(
        status="removed", removed_at=at, removed_by=by
    )


def test_exactly_at_the_threshold_the_campaign_keeps_running(ten_sent, org):
    campaign, customers = ten_sent
    lose(customers[0], org.staff_a)  # 1 of 10 = 10 %: not more than 10 %

    assert campaigns_guardrail_check(now=CHECK) == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_above_the_threshold_it_pauses_and_tells_the_owner(ten_sent, org):
    campaign, customers = ten_sent
    lose(customers[0], org.staff_a)
    Event.objects.create(
        customer=customers[1], type="unsubscribed", occurred_at=SENT_AT + timedelta(minutes=5)
    )

    assert campaigns_guardrail_check(now=CHECK) == [campaign.pk]

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.paused_reason.startswith("2") and "10" in campaign.paused_reason
    note = Notification.objects.get(staff=org.admin, kind="campaign_guardrail")
    assert campaign.name in note.title
    campaign_resume(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.paused_reason == ""


def test_losses_before_the_message_by_staff_or_too_few_recipients_do_not_count(
    ten_sent, org, settings
):
    campaign, customers = ten_sent
    lose(customers[0], org.staff_a, at=SENT_AT - timedelta(minutes=1))  # before it was sent
    lose(customers[1], org.staff_a, by="staff")  # the staff member removed them
    lose(customers[2], org.staff_a)

    assert campaigns_guardrail_check(now=CHECK) == []
    lose(customers[3], org.staff_a)
    settings.SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS = 11
    assert campaigns_guardrail_check(now=CHECK) == []  # 2 of 10, but fewer than 11 reached
    settings.SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS = 10
    assert campaigns_guardrail_check(now=CHECK) == [campaign.pk]


def test_only_the_last_24_hours_of_sends_count(ten_sent, org):
    _, customers = ten_sent
    lose(customers[0], org.staff_a)
    lose(customers[1], org.staff_a)

    later = SENT_AT + timedelta(hours=24, seconds=1)
    assert campaigns_guardrail_check(now=later) == []
