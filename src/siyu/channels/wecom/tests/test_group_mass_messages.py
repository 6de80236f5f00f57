"""The campaign engine's "wecom_group" channel through the fake WeCom server: a step's message
goes to the customer groups its audience is in, one task per group owner, each group once a
day; send results per group settle every member's delivery."""

import pytest
from django.utils import timezone

from siyu.campaigns import services
from siyu.campaigns.models import Delivery
from siyu.campaigns.services import campaign_plan_due, deliveries_send_due
from siyu.channels.base import Message, adapter_for
from siyu.channels.wecom.mass import mass_messages_poll
from siyu.channels.wecom.models import CustomerGroup, GroupMember, MassMessage, MassMessageChat
from siyu.customers.models import Identity
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.segment_services import segment_create


@pytest.fixture
def groups(org, wecom, settings):
    """wrA (zhangsan's) holds wm0-wm2, wrB (lisi's) holds wm3; wm4 is in no group."""
    settings.SIYU_QUIET_HOURS = ""
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_b, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    owners = {"wrA": org.staff_a, "wrB": org.staff_b}
    made = {chat: CustomerGroup.objects.create(chat_id=chat, owner=staff,
                                               owner_userid=staff.wecom_userid)
            for chat, staff in owners.items()}  # fmt: skip
    for chat, staff in owners.items():
        wecom.group_chats[chat] = {"chat_id": chat, "owner": staff.wecom_userid}
    customers = []
    for n in range(5):
        customer = CustomerFactory(name=f"李{n}", city="上海", owner=org.staff_a)
        Identity.objects.create(customer=customer, kind="wecom_external_userid", value=f"wm{n}")
        if n < 4:
            group = made["wrA" if n < 3 else "wrB"]
            GroupMember.objects.create(group=group, userid=f"wm{n}", type=2, customer=customer)
        customers.append(customer)
    return customers


def _campaign(org):
    city = {"attr": "city", "op": "eq", "value": "上海"}
    segment = segment_create(name="群客户", definition=city)
    campaign = services.campaign_create(
        name="社群新品", kind="broadcast", owner=org.admin, segment=segment
    )
    step = services.step_add(
        campaign=campaign, channel="wecom_group", variants=[{"body": "本周新品到店"}]
    )
    services.campaign_schedule(campaign=campaign)
    return campaign, step


def test_group_step_sends_per_owner_and_settles_per_group(org, connection, wecom, groups):
    campaign, _step = _campaign(org)
    campaign_plan_due()
    summary = deliveries_send_due()
    assert (summary.accepted, summary.failed) == (4, 1)
    assert wecom.count("externalcontact/add_msg_template") == 2  # one task per group owner
    tasks = {t["sender"]: (msgid, t) for msgid, t in wecom.mass_messages.items()}
    assert set(tasks["zhangsan"][1]["send"]) == {"wrA"}
    assert tasks["lisi"][1]["text"] == "本周新品到店"
    msg_a, msg_b = tasks["zhangsan"][0], tasks["lisi"][0]
    rows = Delivery.objects.filter(campaign=campaign)
    by_customer = {d.customer_id: d for d in rows}
    assert by_customer[groups[0].pk].external_id == f"{msg_a}:wrA"
    assert "no WeCom customer group" in by_customer[groups[4].pk].error
    assert MassMessage.objects.get(msgid=msg_a).chat_type == "group"

    assert mass_messages_poll() == 0  # nobody confirmed yet
    wecom.staff_sends(msg_a)
    wecom.staff_sends(msg_b, {"wrB": 3})  # wrB had its mass message for the day already
    assert mass_messages_poll() == 2
    status = {n: Delivery.objects.get(customer=c, campaign=campaign).status
              for n, c in enumerate(groups)}  # fmt: skip
    assert status == {0: "sent", 1: "sent", 2: "sent", 3: "suppressed", 4: "failed"}
    suppressed = Delivery.objects.get(customer=groups[3], campaign=campaign)
    assert (suppressed.reason, suppressed.sent_at) == ("platform_limit", None)
    assert dict(MassMessageChat.objects.values_list("chat_id", "status")) == {"wrA": 1, "wrB": 3}


def test_a_group_gets_a_steps_message_once_a_day(org, connection, wecom, groups):
    campaign, step = _campaign(org)
    adapter = adapter_for("wecom_group")

    def message(n: int, customer) -> Message:
        return Message(n, f"k{n}", customer.pk, f"wm{n}", "本周新品到店", staff_id=org.staff_a.pk,
                       extra={"campaign_id": campaign.pk, "step_id": step.pk})  # fmt: skip

    first = adapter.send([message(0, groups[0])])
    later = adapter.send([message(1, groups[1]), message(2, groups[2])])  # a later batch
    assert wecom.count("externalcontact/add_msg_template") == 1
    assert {r.external_id for r in first + later} == {first[0].external_id}


def test_group_owner_not_following_or_wecom_down(org, connection, wecom, groups, settings):
    from siyu.channels.wecom.models import FollowStatus

    settings.SIYU_WECOM_RETRIES = 0
    now = timezone.now()
    FollowStatus.objects.create(staff=org.staff_b, following=False, changed_at=now, checked_at=now)
    adapter = adapter_for("wecom_group")
    wecom.fail("externalcontact/add_msg_template", "http500")
    results = adapter.send(
        [Message(n, f"k{n}", groups[n].pk, f"wm{n}", "hi", extra={"step_id": 1}) for n in (0, 3)]
    )
    assert results[0].retryable and "add_msg_template" in results[0].error  # tried again later
    assert not results[1].retryable and "no WeCom customer group" in results[1].error
    assert not MassMessage.objects.exists()
