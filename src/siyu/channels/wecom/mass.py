"""WeCom mass messages (客户群发) as the campaign engine's "wecom" channel.

Sending: the batch's deliveries are grouped by sender (a staff member with a WeCom user id
who is the customer's friend — the owner first) and text; each group becomes one
add_msg_template task of at most 10,000 external user ids. WeCom only creates a task: the
staff member confirms it in the client, so every delivery is "accepted" with the msgid.

Settling: `mass_messages_poll` (every 10 minutes on the worker) pages get_groupmsg_send_result
and settles the deliveries set-based, one UPDATE per outcome and page. The engine's own poll
asks for one result per external id, but one msgid covers thousands of customers with their
own outcomes (and status 3 is a suppression, not a failure), so this channel settles its
deliveries here and its adapter's `poll` returns nothing.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from siyu.campaigns.dnd import cap_windows
from siyu.campaigns.models import Delivery
from siyu.channels.base import ChannelAdapter, Message, Result, register
from siyu.channels.wecom.client import WecomError
from siyu.channels.wecom.models import CustomerGroup, GroupMember, MassMessage, MassMessageChat
from siyu.channels.wecom.selectors import connection_get
from siyu.customers.models import Identity, Relationship

log = logging.getLogger("siyu.wecom")

PER_TASK = 10_000  # add_msg_template takes at most 10,000 external user ids
PER_GROUP_TASK = 2000  # and at most 2,000 chat ids
PAGE = 1000  # get_groupmsg_task / get_groupmsg_send_result pages
STILL_DISPATCHING = 41063
RETRYABLE = {-2, -1, 45009, 45033}

Status = Delivery.Status


def _senders(messages: Sequence[Message]) -> dict[int, tuple[int, str]]:
    """customer id → (staff id, WeCom user id) who sends: the message's staff (the owner) when
    a friend with a WeCom id, else the friend who added the customer first. One query."""
    rows = (
        Relationship.objects.filter(
            customer_id__in={m.customer_id for m in messages},
            status=Relationship.Status.ACTIVE,
        )
        .exclude(staff__wecom_userid="")
        .exclude(staff__wecom_follow__following=False)  # customer contact taken away in WeCom
        .order_by("added_at", "pk")
        .values_list("customer_id", "staff_id", "staff__wecom_userid")
    )
    friends: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for customer_id, staff_id, userid in rows:
        friends[customer_id].append((staff_id, userid))
    chosen: dict[int, tuple[int, str]] = {}
    for message in messages:
        options = friends.get(message.customer_id)
        if not options:
            continue
        owner = [o for o in options if o[0] == message.staff_id]
        chosen[message.customer_id] = (owner or options)[0]
    return chosen


def _sent_today(customer_ids: set[int], now: datetime, exclude: set[int]) -> dict[int, int]:
    """WeCom mass messages each customer already has today (accepted or sent), one query."""
    day_start, _week = cap_windows(now)
    counts: dict[int, int] = defaultdict(int)
    rows = (
        Delivery.objects.filter(
            channel="wecom",
            customer_id__in=customer_ids,
            status__in=[Status.ACCEPTED, Status.SENT],
            sent_at__gte=day_start,
        )
        .exclude(pk__in=exclude)
        .values_list("customer_id", flat=True)
    )
    for customer_id in rows:
        counts[customer_id] += 1
    return counts


@register
class WecomMassChannel(ChannelAdapter):
    name = "wecom"
    address_kind = "wecom"  # the customer's WeCom external user id

    def send(self, messages: Sequence[Message]) -> list[Result]:
        from siyu.channels.wecom.services import wecom_api

        if connection_get() is None:
            return [Result.failed("the WeCom connection is not set up") for _ in messages]
        now = timezone.now()
        results: dict[int, Result] = {}
        senders = _senders(messages)
        sent = _sent_today(
            {m.customer_id for m in messages}, now, {m.delivery_id for m in messages}
        )
        groups: dict[tuple[int, str, str], list[Message]] = defaultdict(list)
        for message in messages:
            sender = senders.get(message.customer_id)
            if sender is None:
                results[message.delivery_id] = Result.failed(
                    "no staff member with a WeCom user id is this customer's friend",
                    retryable=False,
                )
            elif sent[message.customer_id] >= settings.SIYU_WECOM_MASS_PER_CUSTOMER_DAY:
                results[message.delivery_id] = Result.failed(
                    "platform limit: the customer already has today's WeCom mass message",
                    retryable=False,
                )
            else:
                sent[message.customer_id] += 1
                groups[(*sender, message.body)].append(message)
        if groups:
            with wecom_api() as api:
                for (staff_id, userid, body), group in groups.items():
                    for start in range(0, len(group), PER_TASK):
                        chunk = group[start : start + PER_TASK]
                        results.update(_create_task(api, staff_id, userid, body, chunk, now))
        return [results[m.delivery_id] for m in messages]


def _create_task(api, staff_id: int, userid: str, body: str, chunk, now) -> dict[int, Result]:
    payload = {
        "chat_type": "single",
        "external_userid": [m.address for m in chunk],
        "sender": userid,
        "text": {"content": body},
    }
    try:
        data = api.call("POST", "externalcontact/add_msg_template", json=payload)
    except WecomError as exc:
        error = f"WeCom add_msg_template: {exc.errcode} {exc.errmsg}"
        retryable = exc.errcode in RETRYABLE
        return {m.delivery_id: Result.failed(error, retryable=retryable) for m in chunk}
    msgid = str(data.get("msgid") or "")
    refused = set(data.get("fail_list") or [])
    if msgid:
        MassMessage.objects.create(
            msgid=msgid,
            sender_userid=userid,
            staff_id=staff_id,
            recipients=len(chunk) - len(refused),
            created_at=now,
        )
    results = {}
    for m in chunk:
        if m.address in refused or not msgid:
            results[m.delivery_id] = Result.failed(
                "WeCom refused the recipient (not a friend of the sender)", retryable=False
            )
        else:
            results[m.delivery_id] = Result.accepted(msgid)
    return results


def _settle_page(msgid: str, rows: list[dict]) -> None:
    """One page of send results: one UPDATE per outcome over the page's customers."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.get("external_userid"):
            by_status[int(row.get("status") or 0)].append(row["external_userid"])
    if not any(by_status.get(code) for code in (1, 2, 3)):
        return
    externals = [e for code in (1, 2, 3) for e in by_status.get(code, [])]
    customer_of = dict(
        Identity.objects.filter(kind=Identity.Kind.WECOM_EXTERNAL, value__in=externals).values_list(
            "value", "customer_id"
        )
    )
    waiting = Delivery.objects.filter(channel="wecom", external_id=msgid, status=Status.ACCEPTED)

    def customers(code: int) -> list[int]:
        return [customer_of[e] for e in by_status.get(code, []) if e in customer_of]

    # What WeCom did not deliver does not count against the frequency caps (sent_at cleared).
    waiting.filter(customer_id__in=customers(1)).update(status=Status.SENT, error="")
    waiting.filter(customer_id__in=customers(2)).update(
        status=Status.FAILED, error="the customer is no longer the sender's friend", sent_at=None
    )
    waiting.filter(customer_id__in=customers(3)).update(
        status=Status.SUPPRESSED,
        reason=Delivery.Reason.PLATFORM_LIMIT,
        error="the customer already received another mass message (WeCom's limit)",
        sent_at=None,
    )


def _waiting(message: MassMessage):
    """The task's deliveries WeCom has not settled yet."""
    if message.chat_type == "group":
        chats = MassMessageChat.objects.filter(message=message).values_list("chat_id", flat=True)
        ids = [f"{message.msgid}:{chat_id}" for chat_id in chats]
        return Delivery.objects.filter(
            channel="wecom_group", external_id__in=ids, status=Status.ACCEPTED
        )
    return Delivery.objects.filter(
        channel="wecom", external_id=message.msgid, status=Status.ACCEPTED
    )


def _settle_group_page(message: MassMessage, rows: list[dict]) -> None:
    """One page of a group task's results: one UPDATE per outcome over the page's groups (the
    deliveries of every audience member the group reaches)."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.get("chat_id"):
            by_status[int(row.get("status") or 0)].append(row["chat_id"])
    for code, chats in by_status.items():
        MassMessageChat.objects.filter(message=message, chat_id__in=chats).update(status=code)
    waiting = Delivery.objects.filter(channel="wecom_group", status=Status.ACCEPTED)

    def of(code: int):
        return waiting.filter(external_id__in=[f"{message.msgid}:{c}" for c in by_status[code]])

    if by_status.get(1):
        of(1).update(status=Status.SENT, error="")
    if by_status.get(2):
        of(2).update(
            status=Status.FAILED,
            error="the group could not receive it (dismissed, or no longer the sender's)",
            sent_at=None,
        )
    if by_status.get(3):
        of(3).update(
            status=Status.SUPPRESSED,
            reason=Delivery.Reason.PLATFORM_LIMIT,
            error="the group already received its mass messages allowed (WeCom's limit)",
            sent_at=None,
        )


def mass_message_poll(*, message: MassMessage, api, now: datetime) -> bool:
    """Settle one task's deliveries from WeCom's send results; True when it is finished."""
    cursor = ""
    while True:
        try:
            data = api.call(
                "POST",
                "externalcontact/get_groupmsg_send_result",
                json={
                    "msgid": message.msgid,
                    "userid": message.sender_userid,
                    "limit": PAGE,
                    "cursor": cursor,
                },
            )
        except WecomError as exc:
            if exc.errcode == STILL_DISPATCHING:
                return False  # WeCom is still handing the task out: later
            raise
        with transaction.atomic():
            if message.chat_type == "group":
                _settle_group_page(message, data.get("send_list") or [])
            else:
                _settle_page(message.msgid, data.get("send_list") or [])
        cursor = data.get("next_cursor") or ""
        if not cursor:
            break
    waiting = _waiting(message)
    timeout = timedelta(hours=settings.SIYU_WECOM_MASS_TIMEOUT_HOURS)
    if waiting.exists() and now - message.created_at >= timeout:
        waiting.update(status=Status.FAILED, error="not sent by the staff member", sent_at=None)
    return not waiting.exists()


def mass_messages_poll(*, now: datetime | None = None) -> int:
    """Poll every open mass-message task; returns how many finished. A WeCom failure on one
    task is logged and the others go on (the next run tries it again)."""
    from siyu.channels.wecom.services import wecom_api

    now = now or timezone.now()
    open_tasks = list(MassMessage.objects.filter(finished_at__isnull=True).order_by("created_at"))
    if not open_tasks or connection_get() is None:
        return 0
    finished = []
    with wecom_api() as api:
        for message in open_tasks:
            try:
                done = mass_message_poll(message=message, api=api, now=now)
            except WecomError as exc:
                log.warning("mass message %s: %s %s", message.msgid, exc.errcode, exc.errmsg)
                continue
            if done:
                finished.append(message.pk)
    MassMessage.objects.filter(pk__in=[m.pk for m in open_tasks]).update(polled_at=now)
    MassMessage.objects.filter(pk__in=finished).update(finished_at=now)
    return len(finished)


# To customer groups ------------------------------------------------------------------------------


def _groups_of(messages: Sequence[Message]) -> dict[int, tuple[str, int, str]]:
    """customer id → (chat id, owner staff id, owner WeCom user id): the active customer group
    that reaches the customer, one owned by the message's staff (the customer's owner) first.
    Only groups whose owner is mapped and still a follow user can be sent to. One query."""
    rows = (
        GroupMember.objects.filter(
            customer_id__in={m.customer_id for m in messages},
            type=GroupMember.Type.EXTERNAL,
            group__status=CustomerGroup.Status.ACTIVE,
        )
        .exclude(group__owner__wecom_userid__isnull=True)
        .exclude(group__owner__wecom_userid="")
        .exclude(group__owner__wecom_follow__following=False)
        .order_by("group__chat_id")
        .values_list(
            "customer_id", "group__chat_id", "group__owner_id", "group__owner__wecom_userid"
        )
    )
    options: dict[int, list[tuple[str, int, str]]] = defaultdict(list)
    for customer_id, chat_id, staff_id, userid in rows:
        options[customer_id].append((chat_id, staff_id, userid))
    chosen = {}
    for message in messages:
        found = options.get(message.customer_id)
        if found:
            owned = [g for g in found if g[1] == message.staff_id]
            chosen[message.customer_id] = (owned or found)[0]
    return chosen


@register
class WecomGroupMassChannel(ChannelAdapter):
    """The "wecom_group" channel: a step's message to the customer groups its audience is in.

    Each customer's delivery is reached through one group (their owner's first); each group
    gets the step's message once a day, from its owner (add_msg_template, chat_type group, at
    most 2,000 groups a task), whatever the number of its members in the audience. A customer
    in no group with a mapped owner fails. The text is the group's first member's rendering:
    prefer staff variables to customer ones."""

    name = "wecom_group"
    address_kind = "wecom"

    def send(self, messages: Sequence[Message]) -> list[Result]:
        from siyu.channels.wecom.services import wecom_api

        if connection_get() is None:
            return [Result.failed("the WeCom connection is not set up") for _ in messages]
        now = timezone.now()
        day_start, _week = cap_windows(now)
        chosen = _groups_of(messages)
        steps = {m.extra.get("step_id") for m in messages}
        # The groups this step's message already reached today: the same task covers them.
        earlier = {
            (step_id, chat_id): msgid
            for step_id, chat_id, msgid in MassMessageChat.objects.filter(
                step_id__in=[s for s in steps if s is not None],
                chat_id__in={g[0] for g in chosen.values()},
                created_at__gte=day_start,
            ).values_list("step_id", "chat_id", "message__msgid")
        }
        results: dict[int, Result] = {}
        chats: dict[tuple, dict[str, list[Message]]] = defaultdict(lambda: defaultdict(list))
        task_of: dict[tuple, tuple] = {}  # (step, chat) → (staff, sender, text, step)
        for message in messages:
            group = chosen.get(message.customer_id)
            step_id = message.extra.get("step_id")
            if group is None:
                results[message.delivery_id] = Result.failed(
                    "the customer is in no WeCom customer group whose owner can send",
                    retryable=False,
                )
                continue
            chat_id, staff_id, userid = group
            if (step_id, chat_id) in earlier:
                msgid = earlier[(step_id, chat_id)]
                results[message.delivery_id] = Result.accepted(f"{msgid}:{chat_id}")
                continue
            task = task_of.setdefault((step_id, chat_id), (staff_id, userid, message.body, step_id))
            chats[task][chat_id].append(message)
        if chats:
            with wecom_api() as api:
                for task, by_chat in chats.items():
                    ids = sorted(by_chat)
                    for start in range(0, len(ids), PER_GROUP_TASK):
                        chunk = {c: by_chat[c] for c in ids[start : start + PER_GROUP_TASK]}
                        results.update(_create_group_task(api, task, chunk, now))
        return [results[m.delivery_id] for m in messages]


def _create_group_task(api, task: tuple, chunk: dict[str, list[Message]], now) -> dict:
    staff_id, userid, body, step_id = task
    payload = {
        "chat_type": "group",
        "sender": userid,
        "chat_id_list": list(chunk),
        "text": {"content": body},
    }
    everyone = [m for messages in chunk.values() for m in messages]
    try:
        data = api.call("POST", "externalcontact/add_msg_template", json=payload)
    except WecomError as exc:
        error = f"WeCom add_msg_template: {exc.errcode} {exc.errmsg}"
        retryable = exc.errcode in RETRYABLE
        return {m.delivery_id: Result.failed(error, retryable=retryable) for m in everyone}
    msgid = str(data.get("msgid") or "")
    if not msgid:
        return {
            m.delivery_id: Result.failed("WeCom made no task", retryable=False) for m in everyone
        }
    message = MassMessage.objects.create(
        msgid=msgid,
        chat_type="group",
        sender_userid=userid,
        staff_id=staff_id,
        recipients=len(chunk),
        created_at=now,
    )
    MassMessageChat.objects.bulk_create(
        [
            MassMessageChat(message=message, chat_id=chat_id, step_id=step_id, created_at=now)
            for chat_id in chunk
        ]
    )
    return {
        m.delivery_id: Result.accepted(f"{msgid}:{chat_id}")
        for chat_id, messages in chunk.items()
        for m in messages
    }
