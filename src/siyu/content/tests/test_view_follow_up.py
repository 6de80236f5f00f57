"""The batched follow-up of tracked-link views: the public page only INSERTs the view; a worker
task, kicked at most once per process every few seconds (and swept each minute), turns every
pending view into its event, the link's counters and one notification per link."""

import importlib

import pytest
from django.test import Client
from huey.contrib.djhuey import HUEY

from siyu.content import services
from siyu.content.models import Material, MaterialView, TrackedLink
from siyu.content.services import material_view_read, tracked_link_for
from siyu.content.tasks import material_views_follow_up_sweep, material_views_follow_up_task
from siyu.content.tests.factories import MaterialFactory
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event
from siyu.notifications.models import Notification

PHONE = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0"}
Pending = MaterialView.FollowUp


@pytest.fixture
def article(org):
    return MaterialFactory(
        kind=Material.Kind.ARTICLE,
        title="春季护肤指南",
        url="",
        body="<p>一</p>",
        owner=org.manager_a,
    )


def open_without_follow_up(link, times: int = 1) -> None:
    """Phones open the link; no follow-up runs (the test's transaction never commits, so the
    kick never fires): the views wait, as they do between two runs of the worker."""
    for _ in range(times):
        assert Client().get(f"/m/{link.code}", **PHONE).status_code == 200


@pytest.mark.django_db
def test_the_page_records_the_view_pending_and_the_sweep_follows_it_up(org, article):
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    open_without_follow_up(link, times=3)
    assert set(MaterialView.objects.values_list("follow_up", flat=True)) == {Pending.OPEN}
    assert not Notification.objects.exists() and not Event.objects.exists()

    assert material_views_follow_up_sweep.call_local() == 3

    assert set(MaterialView.objects.values_list("follow_up", flat=True)) == {Pending.DONE}
    note = Notification.objects.get()
    assert note.count == 3  # three opens in one run still count three
    assert note.title == "张三 打开了《春季护肤指南》 第3次，累计阅读 0秒"
    assert Event.objects.filter(customer=customer, type="material_viewed").count() == 3
    link.refresh_from_db()
    assert link.view_count == 3
    assert material_views_follow_up_sweep.call_local() == 0  # nothing left: re-runnable


@pytest.mark.django_db
def test_a_longer_read_rewrites_the_text_without_counting_an_open(org, article):
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    open_without_follow_up(link)
    token = MaterialView.objects.get().token
    # A beacon before the worker ran: the open stays an open.
    material_view_read(code=link.code, token=token, seconds=70)
    assert MaterialView.objects.get().follow_up == Pending.OPEN
    material_views_follow_up_task.call_local()
    material_view_read(code=link.code, token=token, seconds=130)
    assert MaterialView.objects.get().follow_up == Pending.READ
    material_views_follow_up_task.call_local()
    note = Notification.objects.get()
    assert (note.count, note.title) == (1, "张三 打开了《春季护肤指南》 第1次，累计阅读 2分10秒")
    assert Event.objects.count() == 1  # once per visit


@pytest.mark.django_db
def test_the_link_s_counters_add_each_open_and_second_once_over_many_runs(org, article):
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    other = tracked_link_for(material=article, staff=org.staff_b, customer=customer)
    open_without_follow_up(link, times=2)
    first, second = MaterialView.objects.order_by("pk")
    material_view_read(code=link.code, token=first.token, seconds=40)  # before its follow-up
    open_without_follow_up(other)
    assert services.material_views_follow_up(batch=2) == 3  # two batches: the link in both
    link.refresh_from_db()
    assert (link.view_count, link.seconds_read) == (2, 40)
    # Longer reads after the follow-up add what they add, and a shorter beacon nothing.
    material_view_read(code=link.code, token=first.token, seconds=100)
    material_view_read(code=link.code, token=second.token, seconds=30)
    material_view_read(code=link.code, token=second.token, seconds=10)
    open_without_follow_up(link)
    assert services.material_views_follow_up() == 3
    assert services.material_views_follow_up() == 0  # again: nothing counted twice
    link.refresh_from_db()
    views = MaterialView.objects.filter(link=link)
    assert (
        (link.view_count, link.seconds_read)
        == (3, 130)
        == (
            views.count(),
            sum(v.seconds for v in views),
        )
    )
    assert link.last_viewed_at == views.latest("opened_at").opened_at
    other.refresh_from_db()
    assert (other.view_count, other.seconds_read) == (1, 0)


@pytest.mark.django_db
def test_one_run_over_many_links_costs_a_fixed_number_of_queries(
    org, article, django_assert_max_num_queries
):
    def opens(n: int):
        for i in range(n):
            customer = CustomerFactory(owner=org.staff_a, name=f"客户{n}-{i}")
            staff = org.staff_a if i % 2 else None  # half notify the material's owner
            open_without_follow_up(
                tracked_link_for(material=article, staff=staff, customer=customer)
            )
        channel_link = tracked_link_for(
            material=article, staff=org.staff_b, channel=ChannelFactory(name=f"抖音{n}")
        )
        open_without_follow_up(channel_link)
        return channel_link

    opens(2)
    # claim, mark, merged customers, read, counters, totals, events, the notification
    # upsert, the empty claim that ends the run, and the savepoints of the two transactions
    with django_assert_max_num_queries(13):
        assert services.material_views_follow_up() == 3
    channel_link = opens(40)
    with django_assert_max_num_queries(13):
        assert services.material_views_follow_up() == 41
    assert Notification.objects.filter(staff=org.staff_a).count() == 21
    assert Notification.objects.filter(staff=org.manager_a).count() == 21  # the owner
    channel_note = Notification.objects.get(key=f"material_viewed:{channel_link.pk}")
    assert channel_note.staff == org.staff_b and channel_note.customer is None
    assert channel_note.title.startswith("来自抖音40的访客")
    assert Event.objects.count() == 42  # channel links have no customer, no event


@pytest.mark.django_db
def test_a_process_kicks_the_worker_once_per_delay_not_once_per_view(
    org, article, django_capture_on_commit_callbacks, monkeypatch
):
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    monkeypatch.setattr(services, "_next_kick", 0.0)
    HUEY.immediate = False  # the real queue (SqliteHuey in the test's var dir)
    try:
        HUEY.flush()
        with django_capture_on_commit_callbacks(execute=True):
            open_without_follow_up(link, times=5)
        # One task for the five opens, to run FOLLOW_UP_DELAY seconds later.
        (task,) = HUEY.pending()
        assert task.name.endswith("material_views_follow_up_task")
        assert task.eta is not None
        HUEY.flush()
    finally:
        HUEY.immediate = True
    assert MaterialView.objects.filter(follow_up=Pending.OPEN).count() == 5
    material_views_follow_up_task.call_local()
    assert Notification.objects.get().count == 5


@pytest.mark.django_db
def test_the_migration_starts_the_counters_from_what_was_followed_up(org, article):
    from django.apps import apps

    migration = importlib.import_module("siyu.content.migrations.0007_view_counters_incremental")
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    open_without_follow_up(link, times=3)
    done, read, _pending = MaterialView.objects.order_by("pk")
    MaterialView.objects.filter(pk=done.pk).update(follow_up=Pending.DONE, seconds=50)
    MaterialView.objects.filter(pk=read.pk).update(follow_up=Pending.READ, seconds=20)
    # What the recounting follow-up left: every view, pending or not.
    TrackedLink.objects.filter(pk=link.pk).update(view_count=3, seconds_read=70)

    migration.count_what_was_followed_up(apps, None)
    link.refresh_from_db()
    assert (link.view_count, link.seconds_read) == (2, 50)
    assert link.last_viewed_at == read.opened_at
    services.material_views_follow_up()  # the pending open and the longer read
    link.refresh_from_db()
    assert (link.view_count, link.seconds_read) == (3, 70)
