"""Customer transfers through WeCom: handing an active staff member's customers to another
(在职继承) or inheriting a departed one's (离职继承), polling the results, and moving the
relationships and ownership in Siyu for the transfers WeCom completed.

Set-based: the customers are read in one query, started 100 per WeCom call, and each poll
settles finished items with one UPDATE per outcome and three statements for ownership.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from siyu.channels.wecom.client import WecomError
from siyu.channels.wecom.models import CustomerGroup, Transfer, TransferItem
from siyu.channels.wecom.selectors import connection_get
from siyu.channels.wecom.services import wecom_api
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer, Identity, Relationship
from siyu.org.models import Staff

log = logging.getLogger("siyu.wecom")

PER_CALL = 100  # transfer_customer takes at most 100 external user ids
OUTCOMES = {
    1: TransferItem.Status.DONE,
    3: TransferItem.Status.REFUSED,
    4: TransferItem.Status.LIMIT,
    5: TransferItem.Status.FAILED,  # WeCom has no record of it
}


def transfer_start(
    *,
    actor,
    handover: Staff,
    takeover: Staff,
    resigned: bool,
    customer_ids: Iterable[int] | None = None,
    move_groups: bool = False,
    ip: str | None = None,
) -> Transfer:
    """Start transferring the handover's WeCom friends (all, or those in customer_ids), and
    their customer groups: always for a departed member, when `move_groups` for an active one.

    Customers WeCom refuses to start (e.g. 40128, transferred twice in 90 days) are recorded
    as not started with the errcode; a batch WeCom could not take at all likewise. Raises
    DomainError for staff without WeCom ids, the same person twice, a departed takeover, an
    active handover asked to inherit as departed (or the reverse), or no customer to move.
    """
    if handover.pk == takeover.pk:
        raise DomainError("choose two different staff members", field="takeover")
    if not handover.wecom_userid or not takeover.wecom_userid:
        raise DomainError("both staff members need a WeCom user id", field="takeover")
    if takeover.status != Staff.Status.ACTIVE:
        raise DomainError("the takeover staff member has left", field="takeover")
    if resigned != (handover.status == Staff.Status.RESIGNED):
        message = (
            "only a departed staff member's customers can be inherited"
            if resigned
            else "a departed staff member's customers are inherited, not handed over"
        )
        raise DomainError(message, field="resigned")
    friends = Relationship.objects.filter(staff=handover, status=Relationship.Status.ACTIVE)
    if customer_ids is not None:
        friends = friends.filter(customer_id__in=list(customer_ids))
    pairs = list(
        Identity.objects.filter(
            kind=Identity.Kind.WECOM_EXTERNAL, customer_id__in=friends.values("customer_id")
        )
        .order_by("value")
        .values_list("customer_id", "value")
    )
    chat_ids = (
        list(
            CustomerGroup.objects.filter(
                owner_userid=handover.wecom_userid, status=CustomerGroup.Status.ACTIVE
            )
            .order_by("chat_id")
            .values_list("chat_id", flat=True)
        )
        if resigned or move_groups
        else []
    )
    if not pairs and not chat_ids:
        raise DomainError("this staff member has no WeCom customers to transfer")
    transfer = Transfer.objects.create(
        handover=handover,
        takeover=takeover,
        resigned=resigned,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    customer_of = {value: customer_id for customer_id, value in pairs}
    items = []
    with wecom_api() as api:
        for start in range(0, len(pairs), PER_CALL):
            batch = [value for _, value in pairs[start : start + PER_CALL]]
            try:
                answers = api.transfer_customer(
                    handover=handover.wecom_userid,
                    takeover=takeover.wecom_userid,
                    external_userids=batch,
                    resigned=resigned,
                )
                errcodes = {a["external_userid"]: int(a.get("errcode") or 0) for a in answers}
            except WecomError as exc:
                errcodes = dict.fromkeys(batch, exc.errcode)
            items += [
                TransferItem(
                    transfer=transfer,
                    customer_id=customer_of[value],
                    external_userid=value,
                    errcode=errcodes.get(value, 0),
                    status=TransferItem.Status.WAITING
                    if errcodes.get(value, 0) == 0
                    else TransferItem.Status.FAILED,
                )
                for value in batch
            ]
    TransferItem.objects.bulk_create(items)
    if chat_ids:
        _groups_transfer(transfer, chat_ids)
    elif move_groups:
        log.info("wecom transfer %s: %s owns no active customer group", transfer.pk, handover)
    audit_record(
        actor=actor,
        action=AuditLog.Action.TRANSFER,
        target=transfer,
        summary=f"WeCom transfer {handover} → {takeover}",
        detail={
            "resigned": resigned,
            "customers": len(items),
            "started": sum(i.status == TransferItem.Status.WAITING for i in items),
            **(
                {
                    "groups": transfer.groups,
                    "groups_moved": transfer.groups_moved,
                    "groups_failed": [g["chat_id"] for g in transfer.groups_failed],
                }
                if chat_ids
                else {}
            ),
        },
        ip=ip,
    )
    return transfer


GROUPS_PER_CALL = 100  # groupchat/transfer takes at most 100 chat ids


def _groups_transfer(transfer: Transfer, chat_ids: list[str]) -> None:
    """The handover's groups to the takeover, 100 per call (groupchat/transfer for a departed
    member, groupchat/onjob_transfer for an active one); WeCom moves them at once, so the groups
    WeCom did not list as failed are the takeover's in Siyu too (one UPDATE). A group WeCom
    refused, or a call it could not take, stays with its owner and is kept with its errcode."""
    takeover = transfer.takeover
    path = "externalcontact/groupchat/" + ("transfer" if transfer.resigned else "onjob_transfer")
    moved: list[str] = []
    refused: list[dict] = []
    with wecom_api() as api:
        for start in range(0, len(chat_ids), GROUPS_PER_CALL):
            batch = chat_ids[start : start + GROUPS_PER_CALL]
            try:
                data = api.call(
                    "POST", path, json={"chat_id_list": batch, "new_owner": takeover.wecom_userid}
                )
            except WecomError as exc:
                log.warning("%s refused: %s %s", path, exc.errcode, exc.errmsg)
                refused += [
                    {"chat_id": c, "errcode": exc.errcode, "errmsg": exc.errmsg[:100]}
                    for c in batch
                ]
                continue
            failed = {row.get("chat_id"): row for row in data.get("failed_chat_list") or []}
            moved += [chat_id for chat_id in batch if chat_id not in failed]
            refused += [
                {
                    "chat_id": chat_id,
                    "errcode": int(failed[chat_id].get("errcode") or 0),
                    "errmsg": str(failed[chat_id].get("errmsg") or "")[:100],
                }
                for chat_id in batch
                if chat_id in failed
            ]
    CustomerGroup.objects.filter(chat_id__in=moved).update(
        owner=takeover, owner_userid=takeover.wecom_userid
    )
    transfer.groups, transfer.groups_moved = len(chat_ids), len(moved)
    transfer.groups_failed = refused
    transfer.save(update_fields=["groups", "groups_moved", "groups_failed"])


def transfer_poll(*, transfer: Transfer) -> int:
    """Read WeCom's results and settle the finished items; returns how many finished."""
    waiting = dict(
        transfer.items.filter(status=TransferItem.Status.WAITING).values_list(
            "external_userid", "pk"
        )
    )
    if not waiting:
        return 0
    finished: dict[str, list[int]] = defaultdict(list)
    taken_at: dict[int, datetime] = {}
    cursor = ""
    with wecom_api() as api:
        while True:
            page = api.transfer_result(
                handover=transfer.handover.wecom_userid,
                takeover=transfer.takeover.wecom_userid,
                cursor=cursor,
                resigned=transfer.resigned,
            )
            for row in page.get("customer", []):
                item_id = waiting.get(row.get("external_userid"))
                outcome = OUTCOMES.get(row.get("status"))
                if item_id is None or outcome is None:
                    continue
                finished[outcome].append(item_id)
                if str(row.get("takeover_time", "")).isdigit():
                    taken_at[item_id] = datetime.fromtimestamp(int(row["takeover_time"]), tz=UTC)
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
    now = timezone.now()
    with transaction.atomic():
        for outcome, ids in finished.items():
            TransferItem.objects.filter(pk__in=ids).update(status=outcome, finished_at=now)
        done = finished.get(TransferItem.Status.DONE, [])
        if done:
            _move(transfer, done, taken_at, now)
        Transfer.objects.filter(pk=transfer.pk).update(polled_at=now)
    return sum(len(ids) for ids in finished.values())


def _move(transfer: Transfer, item_ids: list[int], taken_at: dict, now: datetime) -> None:
    """The handover's friendships end by transfer, the takeover's begin, ownership follows."""
    customer_of = dict(TransferItem.objects.filter(pk__in=item_ids).values_list("pk", "customer"))
    customers = list(set(customer_of.values()))
    Relationship.objects.filter(staff=transfer.handover, customer_id__in=customers).update(
        status=Relationship.Status.REMOVED,
        removed_at=now,
        removed_by=Relationship.RemovedBy.TRANSFER,
    )
    # A merged customer may have had two external ids: one friendship per customer.
    added_at = {customer_of[i]: taken_at.get(i, now) for i in sorted(customer_of, reverse=True)}
    Relationship.objects.bulk_create(
        [
            Relationship(
                staff=transfer.takeover,
                customer_id=customer_id,
                added_at=at,
                status=Relationship.Status.ACTIVE,
                removed_at=None,
                removed_by="",
            )
            for customer_id, at in added_at.items()
        ],
        update_conflicts=True,
        unique_fields=["staff", "customer"],
        update_fields=["status", "removed_at", "removed_by"],
    )
    Customer.objects.filter(pk__in=customers, owner=transfer.handover).update(
        owner=transfer.takeover, store=transfer.takeover.store
    )


def transfers_poll() -> int:
    """Poll every transfer with customers still waiting; returns how many items finished."""
    if connection_get() is None:
        return 0
    pending = Transfer.objects.filter(items__status=TransferItem.Status.WAITING).distinct()
    finished = 0
    for transfer in pending.select_related("handover", "takeover"):
        try:
            finished += transfer_poll(transfer=transfer)
        except WecomError as exc:
            # Still waiting: the next poll asks again.
            log.warning("wecom transfer %s: poll failed: %s", transfer.pk, exc)
    return finished
