"""Corp tags from Siyu to WeCom through the fake server: mirrored tags created, renamed and
deleted in WeCom, a Siyu group marked to mirror, customers' tags marked on their friendships,
WeCom down (kept and retried), WeCom refusing (failed), and no change bouncing back."""

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from siyu.channels.wecom.corptags import corp_tags_push, tag_group_mirror, tag_marks_push
from siyu.channels.wecom.models import CorpTag, CorpTagGroup, CorpTagOp, TagMark
from siyu.channels.wecom.services import corp_tags_refresh, wecom_api
from siyu.channels.wecom.tests.fake_wecom import event_xml
from siyu.core.errors import DomainError
from siyu.customers.models import Identity, Relationship
from siyu.customers.tests.factories import CustomerFactory
from siyu.tags.models import CustomerTag, Source, Tag, TagGroup
from siyu.tags.services import (
    tag_create,
    tag_delete,
    tag_group_create,
    tag_group_delete,
    tag_group_update,
    tag_update,
    tags_assign,
    tags_remove,
)


@pytest.fixture
def mirrored(connection, wecom, org):
    """WeCom's group 兴趣 (咖啡) mirrored in Siyu; zhangsan and lisi map to staff."""
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_b, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    wecom.tag_groups = [
        {"group_id": "etG1", "group_name": "兴趣", "order": 1,
         "tag": [{"id": "etT1", "name": "咖啡", "order": 1}]},
    ]  # fmt: skip
    with wecom_api() as api:
        corp_tags_refresh(api=api)
    return CorpTagGroup.objects.get(wecom_id="etG1").tag_group


def friend(org, wecom, external_userid: str, *userids: str):
    customer = CustomerFactory(owner=org.staff_a)
    Identity.objects.create(customer=customer, kind="wecom_external_userid", value=external_userid)
    staff = {"zhangsan": org.staff_a, "lisi": org.staff_b}
    for userid in userids:
        Relationship.objects.create(customer=customer, staff=staff[userid], added_at=timezone.now())
    wecom.add_contact(external_userid, follow=[{"userid": u} for u in userids])
    return customer


def wecom_tag_names(wecom) -> dict[str, str]:
    return {t["id"]: t["name"] for g in wecom.tag_groups for t in g["tag"]}


def test_tags_made_renamed_and_deleted_in_a_mirrored_group_follow_in_wecom(
    mirrored, wecom, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tea = tag_create(group=mirrored, name="茶")
    link = CorpTag.objects.get(tag=tea)
    assert wecom_tag_names(wecom)[link.wecom_id] == "茶"

    with django_capture_on_commit_callbacks(execute=True):
        tag_update(tag=tea, name="红茶", colour="#1677ff", description="", order=2)
        tag_group_update(group=mirrored, name="爱好", dimension="preference", exclusive=False,
                         order=1)  # fmt: skip
    assert wecom_tag_names(wecom)[link.wecom_id] == "红茶"
    assert wecom.tag_groups[0]["group_name"] == "爱好"

    with django_capture_on_commit_callbacks(execute=True):
        tag_delete(tag=tea)
    assert link.wecom_id not in wecom_tag_names(wecom)
    assert set(CorpTagOp.objects.values_list("status", flat=True)) == {"done"}

    # Reading WeCom back (a sync, a callback) changes nothing: no loop, no duplicate.
    with wecom_api() as api:
        corp_tags_refresh(api=api)
    assert list(mirrored.tags.values_list("name", flat=True)) == ["咖啡"]
    assert TagGroup.objects.get(pk=mirrored.pk).name == "爱好"

    with django_capture_on_commit_callbacks(execute=True):
        tag_group_delete(group=TagGroup.objects.get(pk=mirrored.pk))
    assert wecom.tag_groups == []
    assert wecom.count("externalcontact/del_corp_tag") == 2  # the tag, then the group once


def test_wecom_down_keeps_the_change_and_the_retry_pushes_it(
    mirrored, wecom, settings, django_capture_on_commit_callbacks
):
    settings.SIYU_WECOM_RETRIES = 0
    wecom.fail("externalcontact/add_corp_tag", "http500")
    with django_capture_on_commit_callbacks(execute=True):
        tea = tag_create(group=mirrored, name="茶")
        tag_update(tag=tea, name="绿茶", colour="#1677ff", description="", order=0)
    ops = list(CorpTagOp.objects.order_by("pk").values_list("kind", "status", "attempts"))
    assert ops == [("create_tag", "pending", 1)]  # the rename needs no op: not in WeCom yet
    assert "HTTP 500" in CorpTagOp.objects.get().error

    assert corp_tags_push() == 1  # the worker's minute run
    assert wecom_tag_names(wecom)[CorpTag.objects.get(tag=tea).wecom_id] == "绿茶"


def test_a_change_wecom_refuses_is_failed_with_its_answer(
    mirrored, wecom, django_capture_on_commit_callbacks
):
    wecom.tag_groups[0]["tag"].append({"id": "etT9", "name": "茶"})  # made in WeCom, not synced
    with django_capture_on_commit_callbacks(execute=True):
        tag_create(group=mirrored, name="茶")
    op = CorpTagOp.objects.get()
    assert (op.status, op.error) == (
        "failed",
        "externalcontact/add_corp_tag: 40071 tag name already exists",
    )
    with pytest.raises(DomainError, match="30 characters"):
        tag_create(group=mirrored, name="长" * 31)


def test_a_siyu_group_marked_to_mirror_is_created_with_its_customers_marked(
    mirrored, wecom, org, django_capture_on_commit_callbacks
):
    levels = tag_group_create(name="会员等级", dimension="commercial")
    gold = tag_create(group=levels, name="金卡")
    tag_create(group=levels, name="银卡")
    customer = friend(org, wecom, "wm1", "zhangsan")
    tags_assign(customer_ids=[customer.pk], tag=gold, source=Source.MANUAL)
    assert not TagMark.objects.exists()  # not mirrored yet

    with django_capture_on_commit_callbacks(execute=True):
        tag_group_mirror(group=levels)
    with django_capture_on_commit_callbacks(execute=True):
        tag_marks_push()
    group_id = CorpTagGroup.objects.get(tag_group=levels).wecom_id
    group = next(g for g in wecom.tag_groups if g["group_id"] == group_id)
    assert sorted(t["name"] for t in group["tag"]) == ["金卡", "银卡"]
    assert wecom.tags_of("wm1", "zhangsan") == {CorpTag.objects.get(tag=gold).wecom_id}
    with pytest.raises(DomainError, match="already mirrors"):
        tag_group_mirror(group=levels)


def test_tagging_customers_marks_each_friendship_in_wecom_set_based(mirrored, wecom, org):
    coffee = Tag.objects.get(group=mirrored, name="咖啡")
    customers = [friend(org, wecom, f"wm{n}", "zhangsan") for n in range(20)]
    both = friend(org, wecom, "wmBoth", "zhangsan", "lisi")
    ids = [c.pk for c in [*customers, both]]
    tags_assign(customer_ids=ids, tag=coffee, source=Source.MANUAL)
    assert TagMark.objects.count() == 21

    with CaptureQueriesContext(db) as queries:
        assert tag_marks_push() == 21
    # Besides the client's token read per call: the same few for 21 customers or 500.
    ours = [q for q in queries.captured_queries if "wecom_accesstoken" not in q["sql"]]
    assert len(ours) <= 8, [q["sql"][:80] for q in ours]
    assert wecom.count("externalcontact/mark_tag") == 22  # one per friendship
    assert wecom.tags_of("wmBoth", "lisi") == {"etT1"}
    assert not TagMark.objects.exists()

    tags_remove(customer_ids=[both.pk], tag=coffee, source=Source.MANUAL)
    tags_assign(customer_ids=[both.pk], tag=coffee, source=Source.MANUAL)
    tags_remove(customer_ids=[both.pk], tag=coffee, source=Source.MANUAL)
    assert TagMark.objects.count() == 1  # one row per customer and tag: the last state wins
    tag_marks_push()
    assert wecom.tags_of("wmBoth", "zhangsan") == set()
    assert wecom.marks[-1]["remove_tag"] == ["etT1"]


def test_wecom_down_keeps_the_marks_for_the_next_run(mirrored, wecom, org, settings):
    settings.SIYU_WECOM_RETRIES = 0
    coffee = Tag.objects.get(group=mirrored, name="咖啡")
    customer = friend(org, wecom, "wm1", "zhangsan")
    tags_assign(customer_ids=[customer.pk], tag=coffee, source=Source.MANUAL)
    wecom.fail("externalcontact/mark_tag", "reset")
    assert tag_marks_push() == 0
    assert TagMark.objects.get().error.startswith("-2")
    assert tag_marks_push() == 1
    assert wecom.tags_of("wm1", "zhangsan") == {"etT1"}


def test_changes_that_came_from_wecom_are_not_sent_back(mirrored, wecom, org, emit):
    coffee = Tag.objects.get(group=mirrored, name="咖啡")
    customer = friend(org, wecom, "wm1", "zhangsan")
    tags_assign(customer_ids=[customer.pk], tag=coffee, source=Source.WECOM)
    assert not TagMark.objects.exists()

    # A member tags the contact in WeCom: the callback brings it in, nothing goes back.
    wecom.contacts["wm1"]["follow_user"][0]["tags"] = []
    emit(event_xml("change_external_contact", "edit_external_contact", UserID="zhangsan",
                   ExternalUserID="wm1"))  # fmt: skip
    assert not CustomerTag.objects.filter(customer=customer).exists()
    # WeCom adds and deletes corp tags: mirrored here, no add/del_corp_tag call.
    wecom.tag_groups[0]["tag"] = [{"id": "etT2", "name": "奶茶"}]
    emit(event_xml("change_external_tag", "update", Id="etT2", TagType="tag"))
    assert list(mirrored.tags.values_list("name", flat=True)) == ["奶茶"]
    assert not TagMark.objects.exists() and not CorpTagOp.objects.exists()
    for path in ("mark_tag", "add_corp_tag", "edit_corp_tag", "del_corp_tag"):
        assert wecom.count(f"externalcontact/{path}") == 0


def test_a_tag_change_not_yet_pushed_survives_a_wecom_edit_callback(mirrored, wecom, org, emit):
    coffee = Tag.objects.get(group=mirrored, name="咖啡")
    customer = friend(org, wecom, "wm1", "zhangsan")
    tags_assign(customer_ids=[customer.pk], tag=coffee, source=Source.MANUAL)  # not pushed yet
    emit(event_xml("change_external_contact", "edit_external_contact", UserID="zhangsan",
                   ExternalUserID="wm1"))  # fmt: skip
    assert CustomerTag.objects.filter(customer=customer, tag=coffee).exists()


def test_an_admin_marks_a_group_to_mirror_from_the_settings_page(
    mirrored, wecom, org, login, django_capture_on_commit_callbacks
):
    levels = tag_group_create(name="会员等级", dimension="commercial")
    client = login(org.admin)
    page = client.get("/settings/wecom/").content.decode()
    assert "corp-tag-push" in page and "会员等级" in page
    assert client.post("/settings/wecom/tags/mirror/", {"group": "x"}).status_code == 302
    response = client.post("/settings/wecom/tags/mirror/", {"group": levels.pk}, follow=True)
    assert "至少" in response.content.decode() or "manual tag" in response.content.decode()
    tag_create(group=levels, name="金卡")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/settings/wecom/tags/mirror/", {"group": levels.pk})
    assert CorpTagGroup.objects.filter(tag_group=levels).exists()
    assert (
        login(org.staff_a).post("/settings/wecom/tags/mirror/", {"group": levels.pk}).status_code
        == 404
    )
