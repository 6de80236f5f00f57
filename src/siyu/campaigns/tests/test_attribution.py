from datetime import timedelta
from decimal import Decimal

import pytest

from siyu.campaigns.attribution import conversions_attribute
from siyu.campaigns.models import Campaign, Conversion, Delivery
from siyu.campaigns.selectors import campaign_figures
from siyu.campaigns.services import campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.commerce.models import Order
from siyu.customers.tests.factories import ChannelFactory
from siyu.events.models import Event

pytestmark = pytest.mark.django_db
_orders = iter(range(1, 10_000))


def sent(campaign, at):
    """Plan the campaign and mark every delivery sent at `at`."""
    campaign_plan_due(now=NOW)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=at)


def paid(customer, at, amount="100"):
    return Order.objects.create(
        channel=ChannelFactory(code="tmall"),
        external_id=f"T{next(_orders)}",
        customer=customer,
        status=Order.Status.PAID,
        amount=Decimal(amount),
        paid_at=at,
    )


def test_the_last_touch_within_its_window_gets_the_order(make_campaign, people):
    goal = {"goal": Campaign.Goal.PAID_ORDER, "goal_days": 7}
    early = make_campaign("sms", cost=Decimal("50"), **goal)
    sent(early, NOW)
    late = make_campaign("email", **goal)
    sent(late, NOW + timedelta(days=2))
    first, second, third = people
    credited = paid(first, NOW + timedelta(days=3), "300")
    before_any = paid(second, NOW - timedelta(hours=1))
    only_early = paid(third, NOW + timedelta(days=1))

    added = conversions_attribute(now=NOW + timedelta(days=4))

    assert added == 2
    assert dict(Conversion.objects.values_list("source", "campaign_id")) == {
        f"order:{credited.pk}": late.pk,
        f"order:{only_early.pk}": early.pk,
    }
    assert f"order:{before_any.pk}" not in set(Conversion.objects.values_list("source", flat=True))
    assert conversions_attribute(now=NOW + timedelta(days=4)) == 0
    figures = campaign_figures(early)
    assert (figures["conversions"], figures["revenue"]) == (1, Decimal("100"))
    assert figures["roi"] == Decimal("1")  # (100 − 50) / 50


def test_orders_outside_the_window_or_below_the_minimum_are_not_credited(make_campaign, people):
    campaign = make_campaign(
        "sms", goal=Campaign.Goal.PAID_ORDER, goal_days=3, goal_min_amount=Decimal("99")
    )
    sent(campaign, NOW)
    paid(people[0], NOW + timedelta(days=3, seconds=1))
    paid(people[1], NOW + timedelta(days=1), "98.99")
    inside = paid(people[2], NOW + timedelta(days=2, hours=23), "99")

    conversions_attribute(now=NOW + timedelta(days=3, hours=1))

    assert list(Conversion.objects.values_list("source", flat=True)) == [f"order:{inside.pk}"]


def test_an_event_goal_is_credited_once(make_campaign, people):
    campaign = make_campaign("sms", goal=Campaign.Goal.EVENT, goal_event_type="coupon_used")
    sent(campaign, NOW)
    used = Event.objects.create(
        customer=people[0], type="coupon_used", occurred_at=NOW + timedelta(hours=5)
    )
    Event.objects.create(customer=people[1], type="other", occurred_at=NOW + timedelta(hours=5))

    conversions_attribute(now=NOW + timedelta(days=1))

    conversion = Conversion.objects.get()
    assert (conversion.source, conversion.campaign_id, conversion.amount) == (
        f"event:{used.pk}",
        campaign.pk,
        0,
    )
