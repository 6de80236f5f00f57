"""Customer transfers through the fake WeCom server: start, poll, ownership, audit, console."""

import pytest
from django.utils import timezone

from siyu.channels.wecom.models import Transfer, TransferItem
from siyu.channels.wecom.transfers import transfer_start, transfers_poll
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Identity, Relationship
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.models import Staff

URL = "/settings/wecom/transfers/"


@pytest.fixture
def team(org):
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_a2, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    return org


def friend_of(staff, wecom, external_userid: str):
    customer = CustomerFactory(owner=staff)
    Identity.objects.create(customer=customer, kind="wecom_external_userid", value=external_userid)
    Relationship.objects.create(customer=customer, staff=staff, added_at=timezone.now())
    wecom.add_contact(external_userid, follow=[{"userid": staff.wecom_userid}])
    return customer


def test_transfer_start_poll_and_ownership(connection, wecom, team):
    customers = [friend_of(team.staff_a, wecom, f"wm{n}") for n in range(5)]
    transfer = transfer_start(
        actor=team.admin.user, handover=team.staff_a, takeover=team.staff_a2, resigned=False
    )
    assert transfer.items.filter(status="waiting").count() == 5
    assert wecom.count("externalcontact/transfer_customer") == 1
    audit = AuditLog.objects.get(action="transfer")
    assert audit.detail == {"resigned": False, "customers": 5, "started": 5}

    assert transfers_poll() == 0  # WeCom has not finished any: the customers' 24 hours run
    wecom.complete_transfer("wm0")
    wecom.complete_transfer("wm1", status=3)
    wecom.complete_transfer("wm4", status=4)
    assert transfers_poll() == 3  # the results come in pages of 2: the cursor is followed

    statuses = dict(transfer.items.values_list("external_userid", "status"))
    assert statuses == {
        "wm0": "done", "wm1": "refused", "wm2": "waiting", "wm3": "waiting", "wm4": "limit"
    }  # fmt: skip
    moved = customers[0]
    moved.refresh_from_db()
    assert moved.owner == team.staff_a2
    old = Relationship.objects.get(customer=moved, staff=team.staff_a)
    assert (old.status, old.removed_by) == ("removed", "transfer")
    assert Relationship.objects.get(customer=moved, staff=team.staff_a2).status == "active"
    customers[1].refresh_from_db()
    assert customers[1].owner == team.staff_a  # refused: stays


def test_customers_wecom_refuses_are_recorded(connection, wecom, team):
    friend_of(team.staff_a, wecom, "wm0")
    stranger = friend_of(team.staff_a, wecom, "wm1")
    wecom.contacts["wm1"]["follow_user"] = []  # not the handover's friend in WeCom
    transfer = transfer_start(
        actor=None, handover=team.staff_a, takeover=team.staff_a2, resigned=False
    )
    item = transfer.items.get(customer=stranger)
    assert (item.status, item.errcode) == ("failed", 40096)


def test_wecom_down_records_the_batch_as_not_started(connection, wecom, team, settings):
    settings.SIYU_WECOM_RETRIES = 0
    friend_of(team.staff_a, wecom, "wm0")
    wecom.fail("externalcontact/transfer_customer", "http500")
    transfer = transfer_start(
        actor=None, handover=team.staff_a, takeover=team.staff_a2, resigned=False
    )
    assert list(transfer.items.values_list("status", "errcode")) == [("failed", -2)]


def test_resigned_staff_use_the_resigned_endpoints(connection, wecom, team):
    friend_of(team.staff_a, wecom, "wm0")
    Staff.objects.filter(pk=team.staff_a.pk).update(status="resigned")
    team.staff_a.refresh_from_db()
    transfer_start(actor=None, handover=team.staff_a, takeover=team.staff_a2, resigned=True)
    assert wecom.count("externalcontact/resigned/transfer_customer") == 1
    wecom.complete_transfer("wm0")
    assert transfers_poll() == 1
    assert wecom.count("externalcontact/resigned/transfer_result") == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("same", "two different"),
        ("no_customers", "no WeCom customers"),
        ("active_as_resigned", "departed"),
        ("no_wecom_id", "WeCom user id"),
    ],
)
def test_refusals(connection, wecom, team, case, reason):
    handover, takeover, resigned = team.staff_a, team.staff_a2, False
    if case == "same":
        takeover = handover
    elif case == "active_as_resigned":
        friend_of(handover, wecom, "wm0")
        resigned = True
    elif case == "no_wecom_id":
        takeover = team.staff_b
    with pytest.raises(DomainError, match=reason):
        transfer_start(actor=None, handover=handover, takeover=takeover, resigned=resigned)
    assert not Transfer.objects.exists()


def test_console_page(org, login, connection, wecom, team, django_assert_num_queries):
    friend_of(team.staff_a, wecom, "wm0")
    client = login(org.admin)
    response = client.post(URL, {"handover": team.staff_a.pk, "takeover": team.staff_a2.pk})
    assert response.status_code == 302
    assert TransferItem.objects.get().status == "waiting"
    bad = client.post(URL, {"handover": team.staff_a.pk, "takeover": team.staff_a.pk})
    assert bad.status_code == 400
    wecom.complete_transfer("wm0")
    client.post(URL + "check/")
    assert TransferItem.objects.get().status == "done"
    client.get(URL)
    with django_assert_num_queries(6):
        page = client.get(URL).content.decode()
    assert "客户转接" in page and "转移" in page
    assert login(org.manager_a).get(URL).status_code == 404


def test_departed_staff_groups_go_to_the_takeover(connection, wecom, team):
    from siyu.channels.wecom.models import CustomerGroup

    friend_of(team.staff_a, wecom, "wm0")
    for chat_id in ("wrA", "wrB", "wrGone"):
        CustomerGroup.objects.create(chat_id=chat_id, owner=team.staff_a, owner_userid="zhangsan")
        if chat_id != "wrGone":  # WeCom no longer knows this one: failed_chat_list
            wecom.group_chats[chat_id] = {"chat_id": chat_id, "owner": "zhangsan"}
    Staff.objects.filter(pk=team.staff_a.pk).update(status="resigned")
    team.staff_a.refresh_from_db()

    transfer = transfer_start(
        actor=team.admin.user, handover=team.staff_a, takeover=team.staff_a2, resigned=True
    )

    assert (transfer.groups, transfer.groups_moved) == (3, 2)
    assert wecom.count("externalcontact/groupchat/transfer") == 1
    assert wecom.group_chats["wrA"]["owner"] == "lisi"
    owners = dict(CustomerGroup.objects.values_list("chat_id", "owner_userid"))
    assert owners == {"wrA": "lisi", "wrB": "lisi", "wrGone": "zhangsan"}
    assert AuditLog.objects.get(action="transfer").detail["groups_moved"] == 2


def test_active_staff_groups_move_when_asked(connection, wecom, team, login):
    from siyu.channels.wecom.models import CustomerGroup

    friend_of(team.staff_a, wecom, "wm0")
    for chat_id, owner in (("wrA", "zhangsan"), ("wrB", "zhangsan"), ("wrSame", "lisi")):
        CustomerGroup.objects.create(chat_id=chat_id, owner=team.staff_a, owner_userid="zhangsan")
        wecom.group_chats[chat_id] = {"chat_id": chat_id, "owner": owner}

    without = transfer_start(
        actor=None, handover=team.staff_a, takeover=team.staff_a2, resigned=False
    )
    assert without.groups == 0  # not asked: an active member keeps their groups
    assert wecom.count("externalcontact/groupchat/onjob_transfer") == 0

    response = login(team.admin).post(
        URL,
        {"handover": team.staff_a.pk, "takeover": team.staff_a2.pk, "move_groups": "on"},
    )
    assert response.status_code == 302
    transfer = Transfer.objects.latest("pk")
    assert wecom.count("externalcontact/groupchat/onjob_transfer") == 1
    assert wecom.count("externalcontact/groupchat/transfer") == 0
    assert (transfer.groups, transfer.groups_moved) == (3, 2)
    assert transfer.groups_failed == [
        {"chat_id": "wrSame", "errcode": 90504, "errmsg": "owner unchanged"}
    ]
    owners = dict(CustomerGroup.objects.values_list("chat_id", "owner_id"))
    assert owners == {"wrA": team.staff_a2.pk, "wrB": team.staff_a2.pk, "wrSame": team.staff_a.pk}
    audit = AuditLog.objects.filter(action="transfer").latest("pk")
    assert (audit.detail["groups_moved"], audit.detail["groups_failed"]) == (2, ["wrSame"])
    page = login(team.admin).get(URL).content.decode()
    assert "2 / 3" in page and "wrSame: 90504" in page


def test_active_staff_groups_when_wecom_is_down_stay(connection, wecom, team, settings):
    from siyu.channels.wecom.models import CustomerGroup

    settings.SIYU_WECOM_RETRIES = 0
    friend_of(team.staff_a, wecom, "wm0")
    CustomerGroup.objects.create(chat_id="wrA", owner=team.staff_a, owner_userid="zhangsan")
    wecom.fail("externalcontact/groupchat/onjob_transfer", "http500")
    transfer = transfer_start(
        actor=None, handover=team.staff_a, takeover=team.staff_a2, resigned=False, move_groups=True
    )
    assert (transfer.groups, transfer.groups_moved) == (1, 0)
    assert transfer.groups_failed[0]["errcode"] == -2
    assert CustomerGroup.objects.get().owner_userid == "zhangsan"
