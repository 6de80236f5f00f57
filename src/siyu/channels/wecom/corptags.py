"""Corp tags from Siyu to WeCom: the other direction of the tag mirror (the sync and the
change_external_tag callback bring WeCom's corp tags into Siyu).

- Creating, renaming or deleting a tag or tag group that mirrors a WeCom corp tag group (or a
  Siyu group an admin marked to mirror) queues a CorpTagOp in the same transaction; the worker
  pushes the queue in order with add_corp_tag / edit_corp_tag / del_corp_tag. WeCom down: the
  op stays pending and the next run (every minute) tries again; WeCom refusing: failed, shown.
- Putting a mirrored tag on customers or taking it off (by hand, import, API; not changes that
  came from WeCom) queues one TagMark per (customer, tag) with one INSERT per batch; the worker
  reads Siyu's state for a batch of customers in a few queries and calls mark_tag once per
  friendship with every tag to add and remove.

No loops: changes that came from WeCom (source "wecom", and corp_tags_refresh, which unlinks
before it deletes and renames with UPDATEs) queue nothing; WeCom does not call back for changes
made through the API, and if it did, re-reading WeCom would find Siyu's state and change nothing.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from siyu.channels.wecom.client import WecomClient, WecomError
from siyu.channels.wecom.models import CorpTag, CorpTagGroup, CorpTagOp, FollowStatus, TagMark
from siyu.core.errors import DomainError
from siyu.customers.models import Identity, Relationship
from siyu.tags.models import CustomerTag, Source, Tag, TagGroup

log = logging.getLogger("siyu.wecom")

RETRYABLE = frozenset({-2, -1, 45009, 45033})
NAME_LIMIT = 30  # WeCom: corp tag and group names are at most 30 characters
MARK_BATCH = 500  # customers read per round of the mark push
GONE = frozenset({40068})  # invalid tag id: already deleted in WeCom
Op = CorpTagOp.Kind


def _check_name(name: str) -> None:
    if len(name) > NAME_LIMIT:
        raise DomainError(
            f"a tag mirrored in WeCom has at most {NAME_LIMIT} characters", field="name"
        )


def _queue(**fields) -> CorpTagOp:
    from siyu.channels.wecom.tasks import corp_tags_push_task

    op = CorpTagOp.objects.create(**fields)
    transaction.on_commit(corp_tags_push_task)
    return op


# Hooks called by the tags services ----------------------------------------------------------


def tag_created(tag: Tag) -> None:
    """A manual tag made in a mirrored group is created in WeCom's group too."""
    if tag.rule is None and CorpTagGroup.objects.filter(tag_group_id=tag.group_id).exists():
        _check_name(tag.name)
        _queue(kind=Op.CREATE_TAG, tag=tag)


def tag_renamed(tag: Tag) -> None:
    link = CorpTag.objects.filter(tag=tag).values_list("wecom_id", flat=True).first()
    if link:
        _check_name(tag.name)
        _queue(kind=Op.RENAME, tag=tag, wecom_id=link)


def tag_deleting(tag: Tag) -> None:
    """Before the tag (and with it its link) is deleted: delete the corp tag in WeCom."""
    link = CorpTag.objects.filter(tag=tag).values_list("wecom_id", flat=True).first()
    if link:
        _queue(kind=Op.DELETE, wecom_id=link)


def tag_group_renamed(group: TagGroup) -> None:
    link = CorpTagGroup.objects.filter(tag_group=group).values_list("wecom_id", flat=True).first()
    if link:
        _check_name(group.name)
        _queue(kind=Op.RENAME, tag_group=group, wecom_id=link, is_group=True)


def tag_group_deleting(group: TagGroup) -> None:
    """Before the group's tags are deleted one by one: one delete of the WeCom group, and the
    tags unlinked so their own deletes queue nothing (WeCom deletes a group's tags with it)."""
    link = CorpTagGroup.objects.filter(tag_group=group).values_list("wecom_id", flat=True).first()
    if link:
        CorpTag.objects.filter(tag__group=group).delete()
        _queue(kind=Op.DELETE, wecom_id=link, is_group=True)


def tags_changed(*, tag_ids: Iterable[int], customer_ids: Iterable[int], source: str) -> None:
    """Customers gained or lost tags: queue a mark for those of the tags mirrored in WeCom.
    What came from WeCom is not sent back. One query when no tag is mirrored."""
    from siyu.channels.wecom.tasks import tag_marks_push_task

    if source == Source.WECOM:
        return
    customer_ids = list(customer_ids)
    if not customer_ids:
        return
    corp_tags = list(CorpTag.objects.filter(tag_id__in=set(tag_ids)).values_list("pk", flat=True))
    if not corp_tags:
        return
    now = timezone.now()
    TagMark.objects.bulk_create(
        [
            TagMark(customer_id=c, corp_tag_id=t, queued_at=now)
            for c in customer_ids
            for t in corp_tags
        ],
        update_conflicts=True,
        unique_fields=["customer", "corp_tag"],
        update_fields=["queued_at"],
        batch_size=2000,
    )
    transaction.on_commit(tag_marks_push_task)


# Marking a Siyu group to mirror --------------------------------------------------------------


@transaction.atomic
def tag_group_mirror(*, group: TagGroup) -> CorpTagOp:
    """Queue creating the Siyu group and its manual tags in WeCom; the customers who have them
    are marked in WeCom once it exists. Raises DomainError when the group already mirrors one,
    has no manual tag (WeCom makes no empty group), or has a name WeCom would refuse."""
    if CorpTagGroup.objects.filter(tag_group=group).exists():
        raise DomainError("this tag group already mirrors a WeCom corp tag group", field="group")
    if CorpTagOp.objects.filter(
        kind=Op.CREATE_GROUP, tag_group=group, status=CorpTagOp.Status.PENDING
    ).exists():
        raise DomainError("this tag group is already being created in WeCom", field="group")
    names = list(group.tags.filter(rule__isnull=True).values_list("name", flat=True))
    if not names:
        raise DomainError("the group needs at least one manual tag", field="group")
    for name in [group.name, *names]:
        _check_name(name)
    return _queue(kind=Op.CREATE_GROUP, tag_group=group)


# The worker: definitions --------------------------------------------------------------------


def corp_tags_push(*, api: WecomClient | None = None) -> int:
    """Push the pending ops in order; returns how many were settled. Stops at the first op
    WeCom could not take (later ops may depend on it)."""
    from siyu.channels.wecom.services import wecom_api

    pending = list(
        CorpTagOp.objects.filter(status=CorpTagOp.Status.PENDING)
        .select_related("tag", "tag_group")
        .order_by("pk")
    )
    if not pending:
        return 0
    settled = 0
    with api or wecom_api() as client:
        for op in pending:
            try:
                PUSH[op.kind](op, client)
            except WecomError as exc:
                error = f"{exc.path}: {exc.errcode} {exc.errmsg}"[:300]
                if exc.errcode in RETRYABLE:
                    CorpTagOp.objects.filter(pk=op.pk).update(attempts=op.attempts + 1, error=error)
                    log.warning("corp tag op %s: WeCom unreachable, kept: %s", op.pk, error)
                    break
                CorpTagOp.objects.filter(pk=op.pk).update(
                    status=CorpTagOp.Status.FAILED, attempts=op.attempts + 1, error=error
                )
                log.warning("corp tag op %s refused by WeCom: %s", op.pk, error)
            except DomainError as exc:
                CorpTagOp.objects.filter(pk=op.pk).update(
                    status=CorpTagOp.Status.FAILED, attempts=op.attempts + 1, error=str(exc)[:300]
                )
            else:
                CorpTagOp.objects.filter(pk=op.pk).update(
                    status=CorpTagOp.Status.DONE,
                    attempts=op.attempts + 1,
                    error="",
                    done_at=timezone.now(),
                )
            settled += 1
    return settled


def _create_group(op: CorpTagOp, api: WecomClient) -> None:
    group = op.tag_group
    if group is None or CorpTagGroup.objects.filter(tag_group=group).exists():
        return  # deleted meanwhile, or already linked
    tags = list(group.tags.filter(rule__isnull=True).order_by("order", "name"))
    body = {
        "group_name": group.name,
        "order": group.order,
        "tag": [{"name": t.name, "order": t.order} for t in tags],
    }
    answer = api.call("POST", "externalcontact/add_corp_tag", json=body)["tag_group"]
    ids = {t["name"]: t["id"] for t in answer.get("tag", [])}
    try:
        with transaction.atomic():
            CorpTagGroup.objects.create(wecom_id=answer["group_id"], tag_group=group)
            CorpTag.objects.bulk_create(
                [CorpTag(wecom_id=ids[t.name], tag=t) for t in tags if t.name in ids],
                ignore_conflicts=True,
            )
    except IntegrityError:
        raise DomainError(
            "WeCom's group of this name is already mirrored by another Siyu tag group"
        ) from None
    # The customers who had the tags before the group was mirrored are marked in WeCom too.
    linked = CorpTag.objects.filter(tag__in=tags)
    for tag_id in linked.values_list("tag_id", flat=True):
        customers = CustomerTag.objects.filter(tag_id=tag_id).values_list("customer_id", flat=True)
        tags_changed(tag_ids=[tag_id], customer_ids=customers.iterator(), source=Source.MANUAL)


def _create_tag(op: CorpTagOp, api: WecomClient) -> None:
    tag = op.tag
    if tag is None or CorpTag.objects.filter(tag=tag).exists():
        return
    group = CorpTagGroup.objects.filter(tag_group_id=tag.group_id).first()
    if group is None:
        return  # the group's own creation (pending before this) carried the tag
    body = {"group_id": group.wecom_id, "tag": [{"name": tag.name, "order": tag.order}]}
    answer = api.call("POST", "externalcontact/add_corp_tag", json=body)["tag_group"]
    created = next((t for t in answer.get("tag", []) if t.get("name") == tag.name), None)
    if created is None:
        raise DomainError("WeCom did not return the new tag")
    CorpTag.objects.bulk_create([CorpTag(wecom_id=created["id"], tag=tag)], ignore_conflicts=True)


def _rename(op: CorpTagOp, api: WecomClient) -> None:
    target = op.tag_group if op.is_group else op.tag
    if target is None:
        return  # deleted since: its delete follows
    api.call("POST", "externalcontact/edit_corp_tag", json={"id": op.wecom_id, "name": target.name})


def _delete(op: CorpTagOp, api: WecomClient) -> None:
    body = {"group_id": [op.wecom_id]} if op.is_group else {"tag_id": [op.wecom_id]}
    try:
        api.call("POST", "externalcontact/del_corp_tag", json=body)
    except WecomError as exc:
        if exc.errcode not in GONE:
            raise  # gone in WeCom already (deleted there too): nothing left to do


PUSH = {Op.CREATE_GROUP: _create_group, Op.CREATE_TAG: _create_tag, Op.RENAME: _rename,
        Op.DELETE: _delete}  # fmt: skip


# The worker: marks on customers --------------------------------------------------------------


def tag_marks_push(*, api: WecomClient | None = None, batch: int = MARK_BATCH) -> int:
    """Make WeCom's tags on the queued customers' friendships match Siyu; returns how many
    marks were settled. Reads a batch of customers in four queries, calls mark_tag once per
    friendship, deletes the settled marks in one statement (a mark queued again meanwhile
    stays). WeCom unreachable: the rest stay queued for the next run."""
    from siyu.channels.wecom.services import wecom_api

    settled = 0
    with api or wecom_api() as client:
        while True:
            done, stop = _marks_round(client, batch)
            settled += done
            if stop or not done:
                return settled


def _marks_round(api: WecomClient, batch: int) -> tuple[int, bool]:
    oldest = TagMark.objects.order_by("queued_at", "pk").values_list("customer_id", flat=True)
    customers = list(dict.fromkeys(oldest[:batch]))
    if not customers:
        return 0, False
    rows = list(
        TagMark.objects.filter(customer_id__in=customers).values_list(
            "pk", "customer_id", "queued_at", "corp_tag__wecom_id", "corp_tag__tag_id"
        )
    )
    have = set(
        CustomerTag.objects.filter(
            customer_id__in=customers, tag_id__in={r[4] for r in rows}
        ).values_list("customer_id", "tag_id")
    )
    externals: dict[int, list[str]] = defaultdict(list)
    for customer_id, value in Identity.objects.filter(
        kind=Identity.Kind.WECOM_EXTERNAL, customer_id__in=customers
    ).values_list("customer_id", "value"):
        externals[customer_id].append(value)
    friends: dict[int, list[str]] = defaultdict(list)
    not_following = FollowStatus.objects.filter(following=False).values("staff_id")
    for customer_id, userid in (
        Relationship.objects.filter(customer_id__in=customers, status=Relationship.Status.ACTIVE)
        .exclude(staff__wecom_userid__isnull=True)
        .exclude(staff__wecom_userid="")
        .exclude(staff_id__in=not_following)
        .values_list("customer_id", "staff__wecom_userid")
    ):
        friends[customer_id].append(userid)
    wanted: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    marks: dict[int, list[tuple[int, object]]] = defaultdict(list)
    for pk, customer_id, at, wecom_id, tag_id in rows:
        wanted[customer_id][0 if (customer_id, tag_id) in have else 1].append(wecom_id)
        marks[customer_id].append((pk, at))
    settled: list[tuple[int, object]] = []
    stop = False
    for customer_id in customers:
        add, remove = wanted[customer_id]
        try:
            for userid in friends.get(customer_id, []):
                for external in externals.get(customer_id, []):
                    _mark(api, userid, external, sorted(add), sorted(remove))
        except WecomError as exc:
            error = f"{exc.errcode} {exc.errmsg}"[:300]
            TagMark.objects.filter(customer_id=customer_id).update(error=error)
            log.warning("mark_tag for customer %s: WeCom unreachable, kept: %s", customer_id, error)
            stop = True
            break
        settled += marks[customer_id]
    if settled:
        # Only marks not queued again since they were read (their queued_at unchanged).
        TagMark.objects.filter(reduce(or_, (Q(pk=pk, queued_at=at) for pk, at in settled))).delete()
    return len(settled), stop


def _mark(api: WecomClient, userid: str, external: str, add: list[str], remove: list[str]) -> None:
    if not add and not remove:
        return
    body = {"userid": userid, "external_userid": external, "add_tag": add, "remove_tag": remove}
    try:
        api.call("POST", "externalcontact/mark_tag", json=body)
    except WecomError as exc:
        if exc.errcode in RETRYABLE:
            raise
        # Not this member's contact any more (84061), a tag deleted in WeCom (40068): the
        # next sync settles it; nothing to retry.
        log.warning("mark_tag %s/%s refused: %s %s", userid, external, exc.errcode, exc.errmsg)
