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
from siyu.channels.wecom.models import MassMessage
from siyu.channels.wecom.selectors import connection_get
from siyu.customers.models import Identity, Relationship

log = logging.getLogger("siyu.wecom")

PER_TASK = 10_000  # add_msg_template takes at most 10,000 external user ids
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
            _settle_page(message.msgid, data.get("send_list") or [])
        cursor = data.get("next_cursor") or ""
        if not cursor:
            break
    waiting = Delivery.objects.filter(
        channel="wecom", external_id=message.msgid, status=Status.ACCEPTED
    )
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
