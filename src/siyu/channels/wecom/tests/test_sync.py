"""Contact sync against the fake server: set-based pages, idempotent, resumable, with progress
in the console and the CLI."""

import io

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from siyu.channels.wecom.models import CorpTag, SyncRun
from siyu.channels.wecom.sync import contacts_sync
from siyu.customers.models import Customer, Identity, Relationship
from siyu.tags.models import CustomerTag, Source


@pytest.fixture
def staff(org):
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_b, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    return org


def populate(wecom, count: int, *, userid: str = "zhangsan", prefix: str = "wm") -> None:
    for n in range(count):
        wecom.add_contact(
            f"{prefix}{n:04d}",
            name=f"客户{n}",
            gender=1 + n % 2,
            follow=[{"userid": userid, "createtime": 1764547200 + n, "state": "s1"}],
        )


def run_sync() -> SyncRun:
    return contacts_sync(run_id=SyncRun.objects.create().pk)


def test_full_sync(connection, wecom, staff):
    wecom.follow_users = ["zhangsan", "lisi", "ghost"]
    wecom.tag_groups = [
        {"group_id": "g1", "group_name": "等级", "tag": [{"id": "t1", "name": "VIP"}]}
    ]
    wecom.add_contact(
        "wmA",
        name="王芳",
        unionid="u-A",
        follow=[
            {"userid": "zhangsan", "createtime": 1764547200, "remark": "王姐", "tag_id": ["t1"]},
            {"userid": "lisi", "createtime": 1764550000},
            {"userid": "ghost", "createtime": 1764550001},
        ],
    )
    wecom.add_contact("wmB", name="李雷", follow=[{"userid": "lisi", "createtime": 1764547300}])

    run = run_sync()

    assert (run.status, run.error) == ("done", "")
    assert (run.contacts, run.created, run.relationships) == (4, 2, 3)
    wang = Identity.objects.get(kind="wecom_external_userid", value="wmA").customer
    assert Identity.objects.filter(customer=wang, kind="wechat_unionid", value="u-A").exists()
    assert wang.owner == staff.staff_a  # the staff member added first
    assert Relationship.objects.get(customer=wang, staff=staff.staff_a).remark == "王姐"
    assert Relationship.objects.filter(customer=wang).count() == 2  # "ghost" is nobody here
    vip = CorpTag.objects.get(wecom_id="t1").tag
    assert CustomerTag.objects.get(customer=wang, tag=vip).source == Source.WECOM

    again = run_sync()
    assert again.created == 0
    assert Customer.objects.count() == 2
    assert Relationship.objects.count() == 3


def test_pages_follow_the_cursor(connection, wecom, staff):
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 230)
    run = run_sync()
    assert (run.status, run.contacts, run.created) == ("done", 230, 230)
    assert wecom.count("externalcontact/batch/get_by_user") == 3
    assert Relationship.objects.filter(staff=staff.staff_a).count() == 230


def test_a_page_costs_the_same_queries_whatever_its_size(connection, wecom, staff):
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 5, prefix="small")
    run_sync()
    with CaptureQueriesContext(db_connection) as small:
        run_sync()
    wecom.contacts.clear()
    populate(wecom, 100, prefix="large")
    run_sync()
    with CaptureQueriesContext(db_connection) as large:
        run_sync()
    assert len(large) == len(small)


def test_wecom_down_midway_leaves_a_run_that_resumes(connection, wecom, staff, settings):
    settings.SIYU_WECOM_RETRIES = 1
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 150)
    run = SyncRun.objects.create()

    def break_wecom(run):
        wecom.fail("externalcontact/batch/get_by_user", "http500", "http500")

    run = contacts_sync(run_id=run.pk, on_page=break_wecom)
    assert run.status == "failed" and "-2" in run.error
    assert run.contacts == 100 and run.cursor  # the first page is kept, and where to go on
    assert Customer.objects.count() == 100

    run = contacts_sync(run_id=run.pk)
    assert (run.status, run.contacts) == ("done", 150)
    assert Customer.objects.count() == 150


def test_console_starts_and_shows_a_sync(
    org, login, connection, wecom, staff, django_capture_on_commit_callbacks
):
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 3)
    client = login(org.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/wecom/sync/")
    assert response.status_code == 302
    run = SyncRun.objects.get()
    assert run.status == "done" and run.created_by == org.admin.user
    panel = client.get("/settings/wecom/sync/status/").content.decode()
    assert "员工 1 / 1" in panel
    assert "读取 3 位联系人，新增 3 位客户，3 条好友关系" in panel
    assert "hx-trigger" not in panel  # finished: the panel stops polling
    assert login(org.manager_a).post("/settings/wecom/sync/").status_code == 404


def test_console_resumes_a_failed_sync(
    org, login, connection, wecom, staff, django_capture_on_commit_callbacks
):
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 2)
    SyncRun.objects.create(status="failed", error="WeCom gettoken: -2")
    client = login(org.admin)
    assert "WeCom gettoken: -2" in client.get("/settings/wecom/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/settings/wecom/sync/resume/")
    assert SyncRun.objects.get().status == "done"
    response = client.post("/settings/wecom/sync/resume/", follow=True)
    assert "only a failed sync" in response.content.decode()


def test_cli_sync_prints_progress(connection, wecom, staff):
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 2)
    out = io.StringIO()
    call_command("wecom_sync", stdout=out)
    assert "1/1 staff · 2 contacts · 2 new customers" in out.getvalue()
    assert "done" in out.getvalue()


def test_groups_are_synced_after_the_contacts(connection, wecom, staff):
    from siyu.channels.wecom.models import CustomerGroup, GroupMember
    from siyu.events.models import Event

    wecom.follow_users = ["zhangsan"]
    populate(wecom, 2)
    member = {"type": 2, "join_time": 1764547300, "join_scene": 3}
    wecom.group_chats = {
        "wrA": {"chat_id": "wrA", "name": "福利群", "owner": "zhangsan",
                "member_list": [{"userid": "wm0000", **member}, {"userid": "zhangsan", "type": 1}]},
        "wrB": {"chat_id": "wrB", "name": "别人的群", "owner": "someone", "member_list": []},
    }  # fmt: skip
    run = run_sync()
    assert (run.status, run.groups, run.groups_done) == ("done", 1, True)
    group = CustomerGroup.objects.get()
    assert (group.chat_id, group.owner) == ("wrA", staff.staff_a)
    linked = GroupMember.objects.get(userid="wm0000").customer
    assert linked == Identity.objects.get(value="wm0000").customer
    assert Event.objects.filter(type="group_joined", customer=linked).count() == 1

    run_sync()  # nothing new: no second join
    assert Event.objects.filter(type="group_joined").count() == 1


def test_a_failed_group_phase_resumes(connection, wecom, staff, settings):
    settings.SIYU_WECOM_RETRIES = 0
    wecom.follow_users = ["zhangsan"]
    populate(wecom, 1)
    wecom.group_chats = {"wrA": {"chat_id": "wrA", "owner": "zhangsan", "member_list": []}}
    wecom.fail("externalcontact/groupchat/list", "http500")
    run = run_sync()
    assert run.status == "failed" and run.contacts == 1 and not run.groups_done
    run = contacts_sync(run_id=run.pk)
    assert (run.status, run.contacts, run.groups) == ("done", 1, 1)
