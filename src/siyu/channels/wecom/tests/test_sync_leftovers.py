"""What a full sync catches besides new contacts: friendships that ended while no callback came,
and a sync whose worker died (stuck "running"), marked failed and resumed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.channels.wecom.models import FollowStatus, SyncRun, SyncSeen
from siyu.channels.wecom.sync import (
    contacts_sync,
    sync_run_resume,
    sync_run_start,
    sync_runs_reap_stuck,
)
from siyu.customers.models import Identity, Relationship
from siyu.customers.tests.factories import CustomerFactory


@pytest.fixture
def staff(org):
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_b, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    return org


def friend(staff_member, external_userid: str, *, added_at=None):
    customer = CustomerFactory(owner=staff_member)
    Identity.objects.create(customer=customer, kind="wecom_external_userid", value=external_userid)
    return Relationship.objects.create(
        customer=customer,
        staff=staff_member,
        added_at=added_at or timezone.now() - timedelta(days=3),
    )


def test_full_sync_removes_friendships_wecom_no_longer_lists(connection, wecom, staff):
    wecom.follow_users = ["zhangsan"]
    kept = friend(staff.staff_a, "wm1")
    gone = friend(staff.staff_a, "wm2")  # deleted in WeCom while Siyu was down
    other = friend(staff.staff_b, "wm3")  # lisi is not a follow user this time: not judged
    wecom.add_contact("wm1", follow=[{"userid": "zhangsan", "createtime": 1764547200}])

    run = contacts_sync(run_id=SyncRun.objects.create().pk)

    assert (run.status, run.ended) == ("done", 1)
    statuses = dict(Relationship.objects.values_list("pk", "status"))
    assert statuses == {kept.pk: "active", gone.pk: "removed", other.pk: "active"}
    gone.refresh_from_db()
    assert gone.removed_at is not None
    assert not SyncSeen.objects.exists()  # the run's bookkeeping is gone
    # Running again changes nothing.
    again = contacts_sync(run_id=SyncRun.objects.create().pk)
    assert again.ended == 0


def test_friendship_made_during_the_sync_is_kept(connection, wecom, staff):
    wecom.follow_users = ["zhangsan"]
    late = friend(staff.staff_a, "wm9", added_at=timezone.now() + timedelta(minutes=1))
    run = contacts_sync(run_id=SyncRun.objects.create().pk)
    assert run.ended == 0
    late.refresh_from_db()
    assert late.status == "active"


def test_stuck_run_is_marked_failed_and_resumes(
    connection, wecom, staff, settings, django_capture_on_commit_callbacks
):
    wecom.follow_users = ["zhangsan"]
    wecom.add_contact("wm1", follow=[{"userid": "zhangsan", "createtime": 1764547200}])
    stuck = SyncRun.objects.create(status="running", heartbeat_at=timezone.now())
    later = timezone.now() + timedelta(minutes=settings.SIYU_WECOM_SYNC_STALE_MINUTES - 1)
    assert sync_runs_reap_stuck(now=later) == 0  # still within the window: a live worker

    later += timedelta(minutes=2)
    assert sync_runs_reap_stuck(now=later) == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert "worker died" in stuck.error

    with django_capture_on_commit_callbacks(execute=True):
        resumed = sync_run_resume(run=stuck)  # Huey runs immediately in the tests
    resumed.refresh_from_db()
    assert (resumed.status, resumed.contacts) == ("done", 1)


def test_a_dead_run_does_not_block_the_next_sync(connection, wecom, staff):
    wecom.follow_users = []
    dead = SyncRun.objects.create(status="running")
    SyncRun.objects.filter(pk=dead.pk).update(created_at=timezone.now() - timedelta(hours=2))
    run = sync_run_start()
    assert run.pk != dead.pk
    dead.refresh_from_db()
    assert dead.status == "failed"


def test_staff_wecom_no_longer_lists_are_marked_not_following(connection, wecom, staff, login):
    wecom.follow_users = ["zhangsan", "lisi"]
    theirs = friend(staff.staff_b, "wm7")
    wecom.add_contact("wm7", follow=[{"userid": "lisi", "createtime": 1764547200}])
    contacts_sync(run_id=SyncRun.objects.create().pk)
    assert dict(FollowStatus.objects.values_list("staff__wecom_userid", "following")) == {
        "zhangsan": True,
        "lisi": True,
    }

    wecom.follow_users = ["zhangsan"]  # lisi's customer-contact permission was taken away
    run = contacts_sync(run_id=SyncRun.objects.create().pk)

    assert run.not_following == ["lisi"]
    lisi = FollowStatus.objects.get(staff=staff.staff_b)
    assert lisi.following is False
    theirs.refresh_from_db()
    assert theirs.status == "active"  # not deleted: WeCom keeps them until a transfer
    page = login(staff.admin).get("/settings/wecom/").content.decode()
    assert "sync-history" in page and "lisi" in page

    wecom.follow_users = ["zhangsan", "lisi"]  # given back
    again = contacts_sync(run_id=SyncRun.objects.create().pk)
    assert again.not_following == []
    assert FollowStatus.objects.get(staff=staff.staff_b).following is True


def test_a_member_not_following_sends_no_mass_message(connection, wecom, staff):
    from siyu.channels.base import Message
    from siyu.channels.wecom.mass import _senders

    rel_a = friend(staff.staff_a, "wm1")
    Relationship.objects.create(
        customer=rel_a.customer, staff=staff.staff_b, added_at=timezone.now() - timedelta(days=9)
    )
    message = Message(1, "k", rel_a.customer_id, "wm1", "hi", staff_id=staff.staff_b.pk)
    assert _senders([message])[rel_a.customer_id][1] == "lisi"  # the owner-designate first
    FollowStatus.objects.create(
        staff=staff.staff_b, following=False, changed_at=timezone.now(), checked_at=timezone.now()
    )
    assert _senders([message])[rel_a.customer_id][1] == "zhangsan"
