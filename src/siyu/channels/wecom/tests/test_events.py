"""Callback events end to end: emitted encrypted and signed by the fake WeCom server, received
by the endpoint, processed against the fake server's API, visible in customers, relationships,
tags, groups and timeline events; processing is idempotent and survives WeCom being down."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.channels.wecom.models import (
    Callback,
    ChannelCode,
    CorpTag,
    CorpTagGroup,
    CustomerGroup,
    GroupMember,
)
from siyu.channels.wecom.services import callback_process, callbacks_retry
from siyu.channels.wecom.tests.fake_wecom import event_xml
from siyu.content.tests.factories import ScriptFactory
from siyu.customers.models import Customer, Identity, Relationship
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event, EventType
from siyu.tags.models import CustomerTag, Source, Tag, TagGroup
from siyu.tags.tests.factories import TagFactory

CONTACT = "change_external_contact"
EXT = "wmEXT0001"


@pytest.fixture
def staff(org):
    org.staff_a.wecom_userid = "zhangsan"
    org.staff_a.nickname = "小张"
    org.staff_a.save()
    return org.staff_a


@pytest.fixture
def code(db):
    script = ScriptFactory(body="{customer.name}您好，我是{staff.nickname}，欢迎！")
    code = ChannelCode.objects.create(
        state="douyin_live_01",
        name="抖音直播间",
        channel=ChannelFactory(code="douyin", name="抖音"),
        welcome_script=script,
        spend=Decimal("1200.00"),
    )
    code.tags.add(TagFactory(name="直播来源"))
    return code


def added(change="add_external_contact", **fields):
    return event_xml(CONTACT, change, UserID="zhangsan", ExternalUserID=EXT, **fields)


def customer_of(external_userid: str = EXT) -> Customer:
    return Identity.objects.get(kind=Identity.Kind.WECOM_EXTERNAL, value=external_userid).customer


def test_contact_added_with_state_and_welcome_code(emit, connection, wecom, staff, code):
    wecom.add_contact(
        EXT,
        name="王芳",
        unionid="union-1",
        gender=2,
        follow=[{"userid": "zhangsan", "remark": "直播间王姐", "createtime": 1764547200}],
    )
    welcome = wecom.issue_welcome_code("WELCOME-1")
    assert emit(added(State="douyin_live_01", WelcomeCode=welcome)).content == b"success"

    customer = customer_of()
    assert (customer.name, customer.gender) == ("王芳", "f")
    assert customer.first_channel.code == "douyin"
    assert customer.owner == staff
    assert Identity.objects.filter(customer=customer, kind="wechat_unionid", value="union-1")
    rel = Relationship.objects.get(customer=customer, staff=staff)
    assert (rel.status, rel.state, rel.remark) == ("active", "douyin_live_01", "直播间王姐")
    assert rel.channel.code == "douyin"
    assert CustomerTag.objects.get(customer=customer).source == Source.WECOM
    assert wecom.welcomes == [{"welcome_code": "WELCOME-1", "text": "王芳您好，我是小张，欢迎！"}]
    event = Event.objects.get(customer=customer, type="wecom_contact_added")
    assert event.properties["channel_code_id"] == code.pk
    assert event.properties["half"] is False
    assert EventType.objects.get(name="wecom_contact_added").label
    assert Callback.objects.get().welcome_sent_at is not None


def test_processing_again_changes_nothing(emit, connection, wecom, staff, code):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added(State="douyin_live_01", WelcomeCode=wecom.issue_welcome_code("W2")))
    callback = Callback.objects.get()
    Callback.objects.update(processed_at=None)  # as if a worker died before marking it
    callback_process(callback_id=callback.pk)
    assert Customer.objects.count() == 1
    assert Relationship.objects.count() == 1
    assert Event.objects.filter(type="wecom_contact_added").count() == 1
    assert CustomerTag.objects.count() == 1
    assert len(wecom.welcomes) == 1  # the single-use code is not spent twice


def test_unionid_joins_the_known_customer(emit, connection, wecom, staff):
    known = CustomerFactory(name="老客户")
    Identity.objects.create(customer=known, kind="wechat_unionid", value="union-9")
    wecom.add_contact(EXT, name="Wang", unionid="union-9", follow=[{"userid": "zhangsan"}])
    emit(added())
    assert customer_of() == known
    assert Customer.objects.live().count() == 1


def test_half_added_contact(emit, connection, wecom, staff):
    wecom.add_contact(EXT, name="李雷", follow=[{"userid": "zhangsan"}])
    emit(added("add_half_external_contact"))
    event = Event.objects.get(type="wecom_contact_added")
    assert event.properties["half"] is True
    assert Relationship.objects.get().status == "active"


def test_expired_welcome_code_is_not_an_error(emit, connection, wecom, staff, code):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added(State="douyin_live_01", WelcomeCode="NEVER-ISSUED"))
    callback = Callback.objects.get()
    assert callback.processed_at is not None and callback.error == ""
    assert wecom.count("externalcontact/send_welcome_msg") == 1
    assert wecom.welcomes == []


def test_unknown_staff_still_resolves_the_customer(emit, connection, wecom, db):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "nobody"}])
    emit(event_xml(CONTACT, "add_external_contact", UserID="nobody", ExternalUserID=EXT))
    assert customer_of().name == "王芳"
    assert not Relationship.objects.exists()
    assert Callback.objects.get().processed_at is not None


def test_wecom_down_keeps_the_callback_for_a_retry(emit, connection, wecom, staff, settings):
    settings.SIYU_WECOM_RETRIES = 1
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    wecom.fail("externalcontact/get", "http500", "http500")
    assert emit(added()).content == b"success"  # acknowledged: WeCom must not be kept waiting
    callback = Callback.objects.get()
    assert callback.processed_at is None
    assert callback.attempts == 1 and "-2" in callback.error
    assert not Identity.objects.filter(kind=Identity.Kind.WECOM_EXTERNAL).exists()

    assert callbacks_retry() == 0  # too fresh: its own task may still be running
    Callback.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    assert callbacks_retry() == 1
    callback.refresh_from_db()
    assert callback.processed_at is not None and callback.error == ""
    assert customer_of().name == "王芳"


def test_missing_fields_are_recorded_as_an_error(emit, connection, wecom):
    emit(event_xml(CONTACT, "add_external_contact", UserID="zhangsan"))
    callback = Callback.objects.get()
    assert callback.processed_at is None
    assert "ExternalUserID" in callback.error


def test_edit_refreshes_remark_and_corp_tags(emit, connection, wecom, staff):
    wecom.tag_groups = [
        {
            "group_id": "g1",
            "group_name": "客户等级",
            "order": 1,
            "tag": [{"id": "t1", "name": "VIP", "order": 1}, {"id": "t2", "name": "普通"}],
        }
    ]
    emit(event_xml("change_external_tag", "create", Id="g1", TagType="tag_group"))
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan", "tags": [{"tag_id": "t1"}]}])
    emit(added())
    customer = customer_of()
    emit(added("edit_external_contact"))
    vip = CorpTag.objects.get(wecom_id="t1").tag
    assert set(CustomerTag.objects.filter(customer=customer).values_list("tag", flat=True)) == {
        vip.pk
    }
    wecom.contacts[EXT]["follow_user"] = [
        {"userid": "zhangsan", "remark": "王姐", "tags": [{"tag_id": "t2"}]}
    ]
    emit(added("edit_external_contact", created=1764547300))
    ordinary = CorpTag.objects.get(wecom_id="t2").tag
    assert set(CustomerTag.objects.filter(customer=customer).values_list("tag", flat=True)) == {
        ordinary.pk
    }
    assert Relationship.objects.get().remark == "王姐"


@pytest.mark.parametrize(
    ("change", "extra", "removed_by"),
    [
        ("del_external_contact", {}, "staff"),
        ("del_external_contact", {"Source": "DELETE_BY_TRANSFER"}, "transfer"),
        ("del_follow_user", {}, "customer"),
    ],
)
def test_removals(emit, connection, wecom, staff, change, extra, removed_by):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added())
    emit(added(change, **extra))
    rel = Relationship.objects.get()
    assert (rel.status, rel.removed_by) == ("removed", removed_by)
    assert rel.removed_at is not None


def test_transfer_failure_is_on_the_timeline(emit, connection, wecom, staff):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added())
    emit(added("transfer_fail", FailReason="customer_refused"))
    event = Event.objects.get(type="wecom_transfer_failed")
    assert event.properties == {"staff_userid": "zhangsan", "reason": "customer_refused"}
    assert event.customer == customer_of()


def chat(members):
    return {
        "chat_id": "wrCHAT1",
        "name": "VIP 福利群",
        "owner": "zhangsan",
        "create_time": 1764547200,
        "notice": "群公告",
        "member_list": members,
        "member_version": "v1",
    }


def member(userid, type_=2, join_time=1764547300, scene=3):
    return {"userid": userid, "type": type_, "join_time": join_time, "join_scene": scene}


def test_group_create_update_dismiss(emit, connection, wecom, staff):
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added())
    customer = customer_of()
    wecom.group_chats["wrCHAT1"] = chat([member("zhangsan", 1), member(EXT), member("wmOTHER")])
    emit(event_xml("change_external_chat", "create", ChatId="wrCHAT1"))
    group = CustomerGroup.objects.get()
    assert (group.name, group.owner, group.status) == ("VIP 福利群", staff, "active")
    assert GroupMember.objects.filter(group=group).count() == 3
    assert GroupMember.objects.get(userid=EXT).customer == customer
    assert GroupMember.objects.get(userid="zhangsan").staff == staff
    assert GroupMember.objects.get(userid="wmOTHER").customer is None  # not known yet
    joined = Event.objects.get(type="group_joined")
    assert (joined.customer, joined.properties["join_scene"]) == (customer, 3)

    wecom.group_chats["wrCHAT1"] = chat([member("zhangsan", 1), member("wmOTHER")])
    emit(
        event_xml(
            "change_external_chat",
            "update",
            ChatId="wrCHAT1",
            UpdateDetail="del_member",
            QuitScene="0",
            MemChangeCnt="1",
        )
    )
    assert not GroupMember.objects.filter(userid=EXT).exists()
    assert Event.objects.get(type="group_left").customer == customer

    emit(event_xml("change_external_chat", "dismiss", ChatId="wrCHAT1"))
    group.refresh_from_db()
    assert group.status == "dismissed" and group.dismissed_at is not None


def test_unknown_chat_is_recorded_as_an_error(emit, connection, wecom):
    emit(event_xml("change_external_chat", "create", ChatId="wrNOPE"))
    assert "90001" in Callback.objects.get().error


def test_corp_tags_are_mirrored_renamed_and_removed(emit, connection, wecom):
    TagGroup.objects.create(name="客户等级", dimension="basic")  # a Siyu group of that name
    wecom.tag_groups = [
        {"group_id": "g1", "group_name": "客户等级", "tag": [{"id": "t1", "name": "VIP"}]},
        {"group_id": "g2", "group_name": "兴趣", "tag": [{"id": "t3", "name": "美妆"}]},
    ]
    emit(event_xml("change_external_tag", "create", Id="t1", TagType="tag"))
    mirrored = CorpTagGroup.objects.get(wecom_id="g1").tag_group
    assert mirrored.name == "客户等级 (WeCom)"
    assert CorpTag.objects.get(wecom_id="t3").tag.name == "美妆"

    wecom.tag_groups = [
        {"group_id": "g1", "group_name": "会员等级", "tag": [{"id": "t1", "name": "超级VIP"}]}
    ]
    emit(event_xml("change_external_tag", "update", Id="t1", TagType="tag", created=1764547301))
    assert CorpTagGroup.objects.get(wecom_id="g1").tag_group.name == "会员等级"
    assert CorpTag.objects.get(wecom_id="t1").tag.name == "超级VIP"
    assert not CorpTag.objects.filter(wecom_id="t3").exists()
    assert not TagGroup.objects.filter(name="兴趣").exists()
    assert not Tag.objects.filter(name="美妆").exists()


def test_the_timeline_shows_the_add_and_the_group_join(emit, connection, wecom, staff, org, login):
    from django.urls import reverse

    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])
    emit(added())
    wecom.group_chats["wrCHAT1"] = chat([member(EXT)])
    emit(event_xml("change_external_chat", "create", ChatId="wrCHAT1"))
    url = reverse("customers:timeline", args=[customer_of().pk])
    page = login(org.admin).get(url, headers={"HX-Request": "true"}).content.decode()
    assert "添加企业微信" in page
    assert "加入客户群" in page


def test_code_tags_mirroring_corp_tags_are_marked_in_wecom(emit, connection, wecom, staff, code):
    wecom.tag_groups = [
        {"group_id": "g1", "group_name": "来源", "tag": [{"id": "t-live", "name": "直播"}]}
    ]
    emit(event_xml("change_external_tag", "create", Id="t-live", TagType="tag"))
    mirrored = CorpTag.objects.get(wecom_id="t-live").tag
    code.tags.add(mirrored)
    wecom.add_contact(EXT, name="王芳", follow=[{"userid": "zhangsan"}])

    emit(added(State="douyin_live_01"))

    follow = wecom.contacts[EXT]["follow_user"][0]
    assert follow["tags"] == [{"tag_id": "t-live", "type": 1}]  # only the mirrored tag
    assert set(
        CustomerTag.objects.filter(customer=customer_of()).values_list("tag", flat=True)
    ) == {
        mirrored.pk,
        *code.tags.exclude(pk=mirrored.pk).values_list("pk", flat=True),
    }
