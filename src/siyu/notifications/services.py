"""Writes: raise a notification for several staff at once, mark them read, prune old ones."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from siyu.notifications.models import Notification
from siyu.org.models import Staff


@transaction.atomic
def notify(
    *,
    staff_ids: Iterable[int],
    kind: str,
    key: str,
    title: str,
    body: str = "",
    url: str = "",
    customer_id: int | None = None,
    repeat: bool = True,
) -> None:
    """Tell each of `staff_ids` about one thing, in one statement for all of them.

    A staff member who already has an unread notification with this `key` gets that row
    updated (count + 1, the new title and body, the new link and customer if given, updated
    now) instead of a second row;
    once they have read it, the next one starts afresh. Unknown staff ids are skipped.
    `repeat=False` refreshes the unread row's text without counting another occurrence.
    """
    ids = sorted({int(i) for i in staff_ids})
    if not ids:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    q = connection.ops.quote_name
    table = q(Notification._meta.db_table)
    columns = [
        "staff_id",
        "kind",
        "key",
        "title",
        "body",
        "url",
        "customer_id",
        "count",
        "created_at",
        "updated_at",
        "read_at",
    ]
    refreshed = ["kind", "title", "body", "updated_at"]
    customer = q("customer_id")
    marks = ", ".join(["%s"] * len(ids))
    # INSERT … SELECT from the staff table drops ids that do not exist; the SELECT's WHERE also
    # keeps SQLite from reading ON CONFLICT as a join constraint. The conflict target names the
    # partial unique index, so only the unread row is updated.
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) "
        f"SELECT s.{q('id')}, %s, %s, %s, %s, %s, %s, 1, %s, %s, NULL "
        f"FROM {q(Staff._meta.db_table)} s WHERE s.{q('id')} IN ({marks}) "
        f"ON CONFLICT ({q('staff_id')}, {q('key')}) WHERE {q('read_at')} IS NULL "
        f"DO UPDATE SET {q('count')} = {table}.{q('count')} + %s, "
        + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in refreshed)
        # A repeat that names no customer or link keeps the ones the row has.
        + f", {customer} = COALESCE(excluded.{customer}, {table}.{customer})"
        + f", {q('url')} = COALESCE(NULLIF(excluded.{q('url')}, ''), {table}.{q('url')})"
    )
    params = [kind, key[:200], title[:200], body, url[:500], customer_id, now, now, *ids]
    params.append(1 if repeat else 0)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@dataclass(frozen=True)
class Notice:
    """One notification of `notify_each`: for one staff member, `times` occurrences of `key`."""

    staff_id: int
    key: str
    title: str
    url: str = ""
    customer_id: int | None = None
    times: int = 1


def notify_each(*, kind: str, notices: Sequence[Notice], repeat: bool = True) -> None:
    """Many notifications of one kind in one statement, each for its own staff member and key
    (a (staff, key) pair at most once), upserted as `notify` does: an unread row with the key
    counts `times` more occurrences (none with `repeat=False`) and takes the new title, link
    and customer; otherwise a new row counting `times` (at least 1). Unknown staff are skipped.
    One statement, so atomic by itself.
    """
    if not notices:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    q = connection.ops.quote_name
    table = q(Notification._meta.db_table)
    columns = ["staff_id", "kind", "key", "title", "body", "url", "customer_id", "count"]
    columns += ["created_at", "updated_at", "read_at"]
    customer = q("customer_id")
    # VALUES columns are column1… on both engines; the casts type the NULLs PostgreSQL would
    # otherwise read as text.
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(notices))
    params: list = []
    for n in notices:
        params += [n.staff_id, n.key[:200], n.title[:200], n.url[:500], n.customer_id]
        params.append(max(n.times, 1) if repeat else 1)
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) "
        f"SELECT s.{q('id')}, %s, v.column2, v.column3, '', v.column4, "
        f"CAST(v.column5 AS BIGINT), CAST(v.column6 AS INTEGER), %s, %s, NULL "
        f"FROM (VALUES {rows}) v JOIN {q(Staff._meta.db_table)} s "
        f"ON s.{q('id')} = CAST(v.column1 AS BIGINT) WHERE true "
        f"ON CONFLICT ({q('staff_id')}, {q('key')}) WHERE {q('read_at')} IS NULL "
        f"DO UPDATE SET {q('count')} = {table}.{q('count')}"
        + (f" + excluded.{q('count')}" if repeat else "")
        + ", "
        + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in ["kind", "title", "updated_at"])
        + f", {customer} = COALESCE(excluded.{customer}, {table}.{customer})"
        + f", {q('url')} = COALESCE(NULLIF(excluded.{q('url')}, ''), {table}.{q('url')})"
    )
    with connection.cursor() as cursor:
        # Placeholders in the order they appear: kind and the two times, then the rows.
        cursor.execute(sql, [kind, now, now, *params])


@transaction.atomic
def notification_mark_read(*, staff_id: int, notification_id: int) -> bool:
    """Mark one of this staff member's notifications read; False if it is not theirs."""
    found = Notification.objects.filter(pk=notification_id, staff_id=staff_id).exists()
    Notification.objects.filter(pk=notification_id, staff_id=staff_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return found


@transaction.atomic
def notifications_mark_all_read(*, staff_id: int) -> int:
    """Mark every unread notification of this staff member read; returns how many."""
    return Notification.objects.filter(staff_id=staff_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )


# Read notifications older than this are deleted by the daily prune; unread ones stay.
READ_KEEP_DAYS = 90


@transaction.atomic
def notifications_prune(*, now: datetime | None = None, keep_days: int = READ_KEEP_DAYS) -> int:
    """Delete notifications read more than `keep_days` ago, in one statement; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    deleted, _ = Notification.objects.filter(read_at__lt=cutoff).delete()
    return deleted
