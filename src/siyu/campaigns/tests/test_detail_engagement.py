"""The campaign page's engagement figures: after each send, who opened a material, replied,
or left (deleted, blocked, unsubscribed), with conversions and revenue — in total and per
sending staff member, with their task completion; the query count does not grow."""

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from siyu.campaigns.attribution import conversions_attribute
from siyu.campaigns.models import Campaign, Delivery
from siyu.campaigns.selectors import campaign_engagement
from siyu.campaigns.services import campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.commerce.models import Order
from siyu.content.models import MaterialView
from siyu.content.services import tracked_link_for
from siyu.content.tests.factories import MaterialFactory
from siyu.customers.models import Relationship
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event

pytestmark = pytest.mark.django_db


def _opened(customer, staff, at):
    link = tracked_link_for(material=MaterialFactory(), staff=staff, customer=customer)
    MaterialView.objects.create(
        link=link,
        material=link.material,
        customer=customer,
        staff=staff,
        token=secrets.token_hex(8),
        opened_at=at,
    )


@pytest.fixture
def sent_campaign(org, make_campaign, people):
    """Three customers of staff A and two of staff A2 were sent an SMS at NOW; goal: a paid
    order within 7 days."""
    others = [
        CustomerFactory(city="上海", owner=org.staff_a2, phone=f"+8613900001{n:03d}")
        for n in range(2)
    ]
    campaign = make_campaign("sms", goal=Campaign.Goal.PAID_ORDER, goal_days=7)
    campaign_plan_due(now=NOW)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=NOW)
    return campaign, people, others


def test_opened_replied_and_left_count_only_after_the_send(org, sent_campaign):
    campaign, people, others = sent_campaign
    hour = timedelta(hours=1)
    Event.objects.create(customer=people[0], type="message_replied", occurred_at=NOW + hour)
    Event.objects.create(customer=people[1], type="message_replied", occurred_at=NOW - hour)
    _opened(people[1], org.staff_a, NOW + 2 * hour)
    _opened(people[2], org.staff_a, NOW - 2 * hour)  # before the message: not its doing
    Relationship.objects.create(
        customer=others[0],
        staff=org.staff_a2,
        added_at=NOW - timedelta(days=30),
        removed_at=NOW + 3 * hour,
        removed_by=Relationship.RemovedBy.CUSTOMER,
    )
    Order.objects.create(
        customer=others[1],
        channel=ChannelFactory(),
        external_id="T1",
        amount=Decimal("199.00"),
        placed_at=NOW + 4 * hour,
        paid_at=NOW + 4 * hour,
    )
    conversions_attribute(now=NOW + 5 * hour)

    total, by_staff = campaign_engagement(campaign, now=NOW + 6 * hour)

    assert (total.sent, total.opened, total.replied, total.left) == (5, 1, 1, 1)
    assert (total.conversions, total.revenue) == (1, Decimal("199.00"))
    rows = {row.staff_id: row for row in by_staff}
    a, a2 = rows[org.staff_a.pk], rows[org.staff_a2.pk]
    assert (a.sent, a.opened, a.replied, a.left, a.conversions) == (3, 1, 1, 0, 0)
    assert (a2.sent, a2.left, a2.conversions, a2.revenue) == (2, 1, 1, Decimal("199.00"))
    assert by_staff[0] == a2  # the staff member who converted comes first
    assert a.name == org.staff_a.name


def test_the_page_shows_them_with_a_fixed_query_count(
    org, login, sent_campaign, django_assert_max_num_queries
):
    campaign, people, others = sent_campaign
    client = login(org.admin)
    url = reverse("campaigns:detail", args=[campaign.pk])
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    for n, customer in enumerate([*people, *others]):
        Event.objects.create(
            customer=customer, type="message_replied", occurred_at=NOW + timedelta(minutes=n)
        )

    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url)

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="campaign-staff"' in html and org.staff_a2.name in html
    # Running campaigns refresh their figures in place; finished ones do not poll.
    assert 'hx-select="#campaign-live"' in html
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    assert 'hx-select="#campaign-live"' not in client.get(url).content.decode()
