"""Syncing WeCom's external contacts into Siyu: every follow user's contacts with their follow
info, through batch/get_by_user (100 users a call, cursor pages of 100), one page at a time.

A page is loaded set-based: OneID resolution for the whole page through the import loader
(one lookup per identity kind, bulk inserts), one upsert of the relationships, one UPDATE for
owners, one tag assignment per corp tag present. The run records its position after every
page, so a failure (WeCom down) leaves a run that resumes where it stopped, and re-running a
page changes nothing.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from siyu.channels.wecom.client import WecomClient, WecomError
from siyu.channels.wecom.models import CorpTag, FollowStatus, SyncRun, SyncSeen
from siyu.channels.wecom.selectors import connection_get
from siyu.channels.wecom.services import GENDERS, corp_tags_refresh, group_store
from siyu.core.errors import DomainError
from siyu.customers.identifiers import normalize_identifier
from siyu.customers.models import Channel, Customer, Identity, Relationship
from siyu.imports.loader import resolve_rows
from siyu.imports.rows import CustomerRow
from siyu.org.models import Staff
from siyu.tags.models import Source, Tag
from siyu.tags.services import tags_assign

USERS_PER_CALL = 100  # batch/get_by_user takes at most 100 user ids
PAGE = 100  # and answers at most 100 contacts a page
ACTIVE = (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING)


def sync_run_start(*, actor=None) -> SyncRun:
    """Queue a sync, or return the one already queued or running (one at a time)."""
    from siyu.channels.wecom.tasks import contacts_sync_task

    sync_runs_reap_stuck()
    with transaction.atomic():
        current = SyncRun.objects.select_for_update().filter(status__in=ACTIVE).first()
        if current is not None:
            return current
        run = SyncRun.objects.create(
            created_by=actor if actor is not None and actor.is_authenticated else None
        )
        transaction.on_commit(lambda: contacts_sync_task(run.pk))
    return run


def sync_runs_reap_stuck(*, now: datetime | None = None) -> int:
    """Mark failed the queued or running syncs without a heartbeat for
    SIYU_WECOM_SYNC_STALE_MINUTES (their worker died); they can be resumed. Returns how many."""
    now = now or timezone.now()
    stale = now - timedelta(minutes=settings.SIYU_WECOM_SYNC_STALE_MINUTES)
    return (
        SyncRun.objects.filter(status__in=ACTIVE)
        .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale))
        .update(
            status=SyncRun.Status.FAILED,
            error="the sync stopped making progress (its worker died); resume it",
            finished_at=now,
        )
    )


def sync_run_resume(*, run: SyncRun) -> SyncRun:
    """Queue a failed run again; it continues from its last finished page."""
    from siyu.channels.wecom.tasks import contacts_sync_task

    with transaction.atomic():
        if SyncRun.objects.filter(status__in=ACTIVE).exclude(pk=run.pk).exists():
            raise DomainError("another sync is running")
        updated = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.FAILED).update(
            status=SyncRun.Status.QUEUED, error=""
        )
        if not updated:
            raise DomainError("only a failed sync can be resumed")
        transaction.on_commit(lambda: contacts_sync_task(run.pk))
    run.refresh_from_db()
    return run


def contacts_sync(*, run_id: int, on_page=None) -> SyncRun:
    """Run (or resume) a sync; WeCom failures end it as failed with the error recorded."""
    run = SyncRun.objects.get(pk=run_id)
    if run.status == SyncRun.Status.DONE:
        return run
    connection = connection_get()
    if connection is None:
        return _finish(run, SyncRun.Status.FAILED, "the WeCom connection is not set up")
    try:
        with WecomClient.for_connection(connection) as api:
            if run.started_at is None:
                # Tags first, so the contacts' corp tags find their Siyu mirrors.
                corp_tags_refresh(api=api)
                run.userids = api.follow_users()
                run.started_at = timezone.now()
                run.not_following = follow_status_record(listed=run.userids, now=run.started_at)
            run.status, run.heartbeat_at = SyncRun.Status.RUNNING, timezone.now()
            run.save(
                update_fields=["userids", "started_at", "not_following", "status", "heartbeat_at"]
            )
            channel = _wecom_channel()
            while run.position < len(run.userids):
                batch = run.userids[run.position : run.position + USERS_PER_CALL]
                page = api.contacts_by_user(batch, cursor=run.cursor, limit=PAGE)
                with transaction.atomic():
                    _load_page(run, page.get("external_contact_list", []), channel)
                    if page.get("next_cursor"):
                        run.cursor = page["next_cursor"]
                    else:
                        run.position += len(batch)
                        run.cursor = ""
                    run.heartbeat_at = timezone.now()
                    run.save(
                        update_fields=[
                            "position", "cursor", "contacts", "created", "relationships",
                            "heartbeat_at",
                        ]
                    )  # fmt: skip
                if on_page is not None:
                    on_page(run)
            if not run.ended_done:
                _end_unlisted_friendships(run)
            if not run.groups_done:
                _sync_groups(run, api)
    except WecomError as exc:
        return _finish(run, SyncRun.Status.FAILED, str(exc))
    return _finish(run, SyncRun.Status.DONE, "")


def follow_status_record(*, listed: list[str], now: datetime) -> list[str]:
    """Mark every staff member with a WeCom user id following or not, as WeCom's follow-user
    list says; returns the user ids of mapped staff WeCom no longer lists. Their friendships
    are left alone (WeCom keeps the customers until someone transfers them). Three queries."""
    listed_set = set(listed)
    mapped = dict(
        Staff.objects.exclude(wecom_userid__isnull=True)
        .exclude(wecom_userid="")
        .values_list("pk", "wecom_userid")
    )
    before = dict(
        FollowStatus.objects.filter(staff_id__in=list(mapped)).values_list("staff_id", "following")
    )
    changed = [
        FollowStatus(staff_id=pk, following=uid in listed_set, changed_at=now, checked_at=now)
        for pk, uid in mapped.items()
        if before.get(pk) != (uid in listed_set)
    ]
    FollowStatus.objects.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["staff"],
        update_fields=["following", "changed_at", "checked_at"],
    )
    FollowStatus.objects.filter(staff_id__in=[pk for pk in mapped if pk in before]).exclude(
        staff_id__in=[row.staff_id for row in changed]
    ).update(checked_at=now)
    return sorted(uid for uid in mapped.values() if uid not in listed_set)


def _sync_groups(run: SyncRun, api: WecomClient) -> None:
    """Every group the follow users own, read and stored one by one (WeCom has no batch read
    of groups); idempotent, so a resumed run simply reads them again."""
    run.groups = 0
    now = timezone.now()
    for start in range(0, len(run.userids), USERS_PER_CALL):
        owners, cursor = run.userids[start : start + USERS_PER_CALL], ""
        while True:
            page = api.group_chats(owners=owners, cursor=cursor)
            for listed in page.get("group_chat_list", []):
                chat_id = listed["chat_id"]
                chat = {**api.group_chat(chat_id), "chat_id": chat_id}
                group_store(chat=chat, at=now, key=f"wecom:sync:{run.pk}:{chat_id}")
                run.groups += 1
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["groups", "heartbeat_at"])
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
    run.groups_done = True
    run.save(update_fields=["groups", "groups_done"])


@transaction.atomic
def _end_unlisted_friendships(run: SyncRun) -> None:
    """Active friendships of the listed staff that WeCom did not list in this run ended while
    no callback arrived (Siyu down, a lost callback): removed, in one UPDATE. Friendships made
    after the run started (a callback during the sync) are left alone."""
    now = timezone.now()
    seen = SyncSeen.objects.filter(
        run=run, staff_id=OuterRef("staff_id"), customer_id=OuterRef("customer_id")
    )
    run.ended = (
        Relationship.objects.filter(
            staff__wecom_userid__in=run.userids,
            status=Relationship.Status.ACTIVE,
            added_at__lt=run.started_at,
        )
        .exclude(Exists(seen))
        .update(status=Relationship.Status.REMOVED, removed_at=now, removed_by="")
    )
    run.ended_done = True
    run.save(update_fields=["ended", "ended_done"])
    SyncSeen.objects.filter(run=run).delete()


def _finish(run: SyncRun, status: str, error: str) -> SyncRun:
    run.status, run.error, run.finished_at = status, error[:1000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


def _wecom_channel() -> Channel:
    channel, _ = Channel.objects.get_or_create(
        code="wecom", defaults={"name": "企业微信", "kind": Channel.Kind.PRIVATE}
    )
    return channel


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if str(value or "").isdigit() else None


def _load_page(run: SyncRun, items: list[dict], channel: Channel) -> None:
    now = timezone.now()
    rows, follows = [], []
    for item in items:
        contact, follow = item.get("external_contact") or {}, item.get("follow_info") or {}
        try:
            identifiers = [
                normalize_identifier(Identity.Kind.WECOM_EXTERNAL, contact.get("external_userid"))
            ]
            if contact.get("unionid"):
                identifiers.append(
                    normalize_identifier(Identity.Kind.WECHAT_UNIONID, contact["unionid"])
                )
        except DomainError:
            continue  # a contact without a usable id cannot be anyone; WeCom sends none such
        rows.append(
            CustomerRow(
                row=len(rows),
                values=(),
                identifiers=[(i.kind, i.value) for i in identifiers],
                name=(contact.get("name") or "")[:100] or None,
                gender=GENDERS.get(contact.get("gender") or 0, ""),
            )
        )
        follows.append(follow)
    if not rows:
        return
    customer_ids, counts = resolve_rows(rows, channel=channel, seen_at=now)
    staff_of = dict(
        Staff.objects.filter(wecom_userid__in={f.get("userid") for f in follows}).values_list(
            "wecom_userid", "pk"
        )
    )
    relationships: dict[tuple[int, int], Relationship] = {}
    tagged: dict[str, set[int]] = {}
    for follow, customer_id in zip(follows, customer_ids, strict=True):
        staff_id = staff_of.get(follow.get("userid"))
        if customer_id is None:
            continue
        for tag_id in follow.get("tag_id") or []:
            tagged.setdefault(tag_id, set()).add(customer_id)
        if staff_id is None:
            continue
        relationships[(staff_id, customer_id)] = Relationship(
            staff_id=staff_id,
            customer_id=customer_id,
            added_at=_timestamp(follow.get("createtime")) or now,
            state=(follow.get("state") or "")[:64],
            remark=(follow.get("remark") or "")[:100],
            status=Relationship.Status.ACTIVE,
            removed_at=None,
            removed_by="",
        )
    SyncSeen.objects.bulk_create(
        [SyncSeen(run=run, staff_id=s, customer_id=c) for s, c in relationships],
        ignore_conflicts=True,
    )
    Relationship.objects.bulk_create(
        list(relationships.values()),
        update_conflicts=True,
        unique_fields=["staff", "customer"],
        update_fields=["state", "remark", "status", "removed_at", "removed_by"],
    )
    # A customer without an owner is owned by the staff member they added first.
    first_friend = Relationship.objects.filter(
        customer=OuterRef("pk"), status=Relationship.Status.ACTIVE
    ).order_by("added_at", "pk")
    Customer.objects.filter(pk__in={c for _, c in relationships}, owner__isnull=True).update(
        owner_id=Subquery(first_friend.values("staff_id")[:1])
    )
    mirrors = dict(
        CorpTag.objects.filter(wecom_id__in=list(tagged)).values_list("wecom_id", "tag_id")
    )
    tags = Tag.objects.in_bulk([t for t in mirrors.values()])
    for wecom_id, customers in tagged.items():
        tag = tags.get(mirrors.get(wecom_id))
        if tag is not None and tag.rule is None:
            tags_assign(customer_ids=customers, tag=tag, source=Source.WECOM)
    run.contacts += len(rows)
    run.created += counts.created
    run.relationships += len(relationships)
