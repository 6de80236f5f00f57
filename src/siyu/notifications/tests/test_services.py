from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import CustomerFactory
from siyu.notifications.models import Notification
from siyu.notifications.selectors import notification_list, notification_unread_count
from siyu.notifications.services import (
    notification_mark_read,
    notifications_mark_all_read,
    notify,
)
from siyu.notifications.tasks import notifications_prune_daily


def test_notify_creates_one_row_per_staff_in_one_statement(org):
    customer = CustomerFactory(owner=org.staff_a)

    with CaptureQueriesContext(connection) as ctx:
        notify(
            staff_ids=[org.staff_a.pk, org.staff_a2.pk, org.staff_a.pk],
            kind="material_viewed",
            key="material:7:customer:1",
            title="张三 opened 新品手册",
            url="/customers/1/",
            customer_id=customer.pk,
        )

    writes = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(writes) == 1
    rows = Notification.objects.order_by("staff_id")
    assert [(n.staff_id, n.count, n.read_at) for n in rows] == [
        (org.staff_a.pk, 1, None),
        (org.staff_a2.pk, 1, None),
    ]
    assert rows[0].customer_id == customer.pk
    assert rows[0].created_at == rows[0].updated_at


def test_repeat_while_unread_counts_up_on_the_same_row(org):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="same", title="first", body="b1")
    first = Notification.objects.get()
    notify(staff_ids=[org.staff_a.pk], kind="k", key="same", title="second", body="b2")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="other", title="other")

    again = Notification.objects.get(key="same")
    assert again.pk == first.pk
    assert (again.count, again.title, again.body) == (2, "second", "b2")
    assert again.updated_at >= first.updated_at
    assert again.created_at == first.created_at
    assert notification_unread_count(staff_id=org.staff_a.pk) == 2


def test_once_read_the_next_one_starts_a_new_row(org):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="same", title="first")
    first = Notification.objects.get()
    assert notification_mark_read(staff_id=org.staff_a.pk, notification_id=first.pk)

    notify(staff_ids=[org.staff_a.pk], kind="k", key="same", title="again")

    assert Notification.objects.count() == 2
    fresh = Notification.objects.get(read_at__isnull=True)
    assert (fresh.count, fresh.title) == (1, "again")
    first.refresh_from_db()
    assert (first.count, first.title) == (1, "first")


def test_unknown_staff_ids_and_empty_lists_are_skipped(org):
    notify(staff_ids=[], kind="k", key="x", title="t")
    notify(staff_ids=[org.staff_b.pk, 987654], kind="k", key="x", title="t")
    assert list(Notification.objects.values_list("staff_id", flat=True)) == [org.staff_b.pk]


def test_staff_cannot_mark_someone_elses_notification(org):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="x", title="t")
    mine = Notification.objects.get()
    assert not notification_mark_read(staff_id=org.staff_b.pk, notification_id=mine.pk)
    mine.refresh_from_db()
    assert mine.read_at is None


def test_mark_all_read_touches_only_own_unread(org):
    notify(staff_ids=[org.staff_a.pk, org.staff_b.pk], kind="k", key="x", title="t")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="y", title="t")

    assert notifications_mark_all_read(staff_id=org.staff_a.pk) == 2

    assert notification_unread_count(staff_id=org.staff_a.pk) == 0
    assert notification_unread_count(staff_id=org.staff_b.pk) == 1


def test_list_puts_unread_first_then_newest(org):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="old-unread", title="old unread")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="read", title="read")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="new-unread", title="new unread")
    now = timezone.now()
    Notification.objects.filter(key="old-unread").update(updated_at=now - timedelta(hours=2))
    Notification.objects.filter(key="read").update(read_at=now, updated_at=now)

    titles = [n.title for n in notification_list(staff_id=org.staff_a.pk)]

    assert titles == ["new unread", "old unread", "read"]
    assert list(notification_list(staff_id=None)) == []


def test_a_customer_merge_moves_notifications_to_the_survivor(org):
    survivor, absorbed = CustomerFactory(), CustomerFactory()
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t", customer_id=absorbed.pk)

    customers_merge(survivor=survivor, absorbed=[absorbed])

    assert Notification.objects.get().customer_id == survivor.pk


def test_repeat_without_customer_or_link_keeps_the_rows_own(org):
    customer = CustomerFactory()
    notify(
        staff_ids=[org.staff_a.pk], kind="k", key="a", title="t", url="/x/", customer_id=customer.pk
    )
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t2")
    row = Notification.objects.get()
    assert (row.count, row.title, row.url, row.customer_id) == (2, "t2", "/x/", customer.pk)
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t3", url="/y/")
    assert Notification.objects.get().url == "/y/"


def test_prune_deletes_only_long_read_notifications(org):
    for key in ("old-read", "recent-read", "old-unread"):
        notify(staff_ids=[org.staff_a.pk], kind="k", key=key, title=key)
    now = timezone.now()
    Notification.objects.filter(key="old-read").update(read_at=now - timedelta(days=91))
    Notification.objects.filter(key="recent-read").update(read_at=now - timedelta(days=89))
    Notification.objects.filter(key="old-unread").update(updated_at=now - timedelta(days=400))

    assert notifications_prune_daily.call_local() == 1

    assert sorted(Notification.objects.values_list("key", flat=True)) == [
        "old-unread",
        "recent-read",
    ]


def test_a_repeat_that_only_refreshes_keeps_the_count(org):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="k:1", title="first")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="k:1", title="longer read", repeat=False)
    note = Notification.objects.get()
    assert (note.count, note.title) == (1, "longer read")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="k:1", title="opened again")
    assert Notification.objects.get().count == 2
