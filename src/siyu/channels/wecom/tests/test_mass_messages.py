"""The campaign engine's "wecom" channel end to end through the fake WeCom server: plan a
campaign, send (add_msg_template per sender), poll the send results, settle the deliveries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.campaigns import services
from siyu.campaigns.models import Delivery
from siyu.campaigns.services import campaign_plan_due, deliveries_send_due
from siyu.channels.wecom.mass import mass_messages_poll
from siyu.channels.wecom.models import MassMessage
from siyu.customers.models import Identity, Relationship
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.segment_services import segment_create


@pytest.fixture
def audience(org, wecom, settings):
    """Five Shanghai customers: four friends of staff A in WeCom, one (wm4) whom WeCom no
    longer lists as a friend although Siyu still does."""
    settings.SIYU_QUIET_HOURS = ""
    org.staff_a.wecom_userid = "zhangsan"
    org.staff_a.save(update_fields=["wecom_userid"])
    made = []
    for n in range(5):
        customer = CustomerFactory(name=f"李{n}", city="上海", owner=org.staff_a)
        Identity.objects.create(customer=customer, kind="wecom_external_userid", value=f"wm{n}")
        Relationship.objects.create(customer=customer, staff=org.staff_a, added_at=timezone.now())
        if n < 4:
            wecom.add_contact(f"wm{n}", follow=[{"userid": "zhangsan"}])
        made.append(customer)
    return made


def _campaign(org, name="群发"):
    city = {"attr": "city", "op": "eq", "value": "上海"}
    segment = segment_create(name=f"{name}客户", definition=city)
    campaign = services.campaign_create(
        name=name, kind="broadcast", owner=org.admin, segment=segment
    )
    services.step_add(campaign=campaign, channel="wecom", variants=[{"body": "{staff.name}的新品"}])
    services.campaign_schedule(campaign=campaign)
    return campaign


def test_plan_send_poll_settle(org, connection, wecom, audience):
    campaign = _campaign(org)
    campaign_plan_due()
    summary = deliveries_send_due()
    assert (summary.accepted, summary.failed) == (4, 1)  # wm4 is in add_msg_template's fail_list
    assert wecom.count("externalcontact/add_msg_template") == 1  # one task for the one sender
    (msgid,) = wecom.mass_messages
    assert wecom.mass_messages[msgid]["sender"] == "zhangsan"
    assert wecom.mass_messages[msgid]["text"] == f"{org.staff_a.name}的新品"
    rows = Delivery.objects.filter(campaign=campaign)
    assert set(rows.filter(status="accepted").values_list("external_id", flat=True)) == {msgid}
    assert "not a friend" in rows.get(status="failed").error

    assert mass_messages_poll() == 0  # the staff member has not confirmed the task yet
    assert rows.filter(status="accepted").count() == 4

    wecom.staff_sends(msgid, {"wm1": 2, "wm2": 3})
    assert mass_messages_poll() == 1  # pages of 2: the cursor is followed
    by_customer = {d.customer_id: d for d in rows}
    status = {n: by_customer[c.pk].status for n, c in enumerate(audience)}
    assert status == {0: "sent", 1: "failed", 2: "suppressed", 3: "sent", 4: "failed"}
    assert by_customer[audience[2].pk].reason == "platform_limit"
    assert by_customer[audience[2].pk].sent_at is None  # not counted against the caps
    assert by_customer[audience[0].pk].sent_at is not None
    assert MassMessage.objects.get().finished_at is not None


def test_still_dispatching_then_timeout(org, connection, wecom, audience, settings):
    _campaign(org)
    campaign_plan_due()
    deliveries_send_due()
    (msgid,) = wecom.mass_messages
    wecom.mass_messages[msgid]["send"]["wm0"] = 1  # WeCom is still handing it out: 41063
    assert mass_messages_poll() == 0
    assert Delivery.objects.filter(status="accepted").count() == 4

    wecom.mass_messages[msgid]["dispatching"] = False
    later = timezone.now() + timedelta(hours=settings.SIYU_WECOM_MASS_TIMEOUT_HOURS)
    assert mass_messages_poll(now=later) == 1
    assert Delivery.objects.filter(status="sent").count() == 1
    assert set(Delivery.objects.filter(status="failed").values_list("error", flat=True)) >= {
        "not sent by the staff member"
    }


def test_wecom_sends_count_in_the_engine_caps(org, connection, wecom, audience):
    _campaign(org)
    campaign_plan_due()
    deliveries_send_due()
    second = _campaign(org, "再群发")
    campaign_plan_due()
    deliveries_send_due()
    # The four accepted mass messages count as today's marketing message (cap 1 per day);
    # wm4's was refused by WeCom, so it does not count and is offered again.
    reasons = list(Delivery.objects.filter(campaign=second).values_list("reason", flat=True))
    assert sorted(reasons) == ["", "cap_day", "cap_day", "cap_day", "cap_day"]
    assert wecom.count("externalcontact/add_msg_template") == 2


def test_platform_daily_limit_is_applied_before_sending(org, connection, wecom, audience, settings):
    settings.SIYU_CAMPAIGN_CAP_DAY = settings.SIYU_CAMPAIGN_CHANNEL_CAP_DAY = 5
    _campaign(org)
    campaign_plan_due()
    deliveries_send_due()
    second = _campaign(org, "再群发")
    campaign_plan_due()
    summary = deliveries_send_due()
    assert summary.accepted == 0
    # Only wm4, whose first message WeCom refused, is offered to WeCom again.
    assert wecom.count("externalcontact/add_msg_template") == 2
    errors = list(Delivery.objects.filter(campaign=second).values_list("error", flat=True))
    assert sum("platform limit" in e for e in errors) == 4
