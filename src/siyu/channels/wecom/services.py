"""Writes of the WeCom connector: the connection, received callbacks, and what each callback
event changes in Siyu (customers, relationships, tags, groups and timeline events).

Every event handler is idempotent: a callback is stored once per message (WeCom retries and
replays map onto the same row), its writes are upserts, its events carry idempotency keys, and
a failed run (WeCom unreachable, say) leaves the row pending for `callbacks_retry`.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from siyu.channels.wecom.callbacks import Inbound, parse_xml
from siyu.channels.wecom.client import NETWORK, WecomClient, WecomError
from siyu.channels.wecom.crypto import KEY_PATTERN
from siyu.channels.wecom.models import (
    Callback,
    ChannelCode,
    Connection,
    CorpTag,
    CorpTagGroup,
    CorpTagOp,
    CustomerGroup,
    GroupMember,
    TagMark,
)
from siyu.channels.wecom.selectors import callbacks_pending_ids, connection_get
from siyu.content.formatting import render_script
from siyu.content.models import Script
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Channel, Customer, Identity, Relationship
from siyu.customers.services import customer_resolve
from siyu.events.models import Event
from siyu.org.models import Staff
from siyu.tags.models import CustomerTag, Source, Tag, TagGroup
from siyu.tags.services import tag_delete, tag_group_delete, tags_assign, tags_remove

log = logging.getLogger("siyu.wecom")

CORP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALLBACK_TOKEN = re.compile(r"[A-Za-z0-9]{1,32}")
MAX_ATTEMPTS = 10
RETRY_AFTER = timedelta(seconds=60)
# send_welcome_msg answers: the code expired (20 s) or the chat has started / another app sent.
WELCOME_SPENT = frozenset({41050, 41051})
GENDERS = {1: "m", 2: "f"}

# The connection ---------------------------------------------------------------------------------


@transaction.atomic
def connection_save(
    *,
    actor,
    corp_id: str,
    contact_secret: str,
    callback_token: str,
    encoding_aes_key: str,
    agent_id: str = "",
    ip: str | None = None,
) -> Connection:
    """Create or update the organisation's connection. A blank secret, token or key keeps the
    stored one (the console never shows them back). Raises DomainError naming the field."""
    connection = connection_get() or Connection()
    creating = connection.pk is None
    corp_id = (corp_id or "").strip()
    if not CORP_ID.fullmatch(corp_id):
        raise DomainError("the corp id is letters and digits (ww…), up to 64", field="corp_id")
    secrets = {
        "contact_secret": (contact_secret or "").strip(),
        "callback_token": (callback_token or "").strip(),
        "encoding_aes_key": (encoding_aes_key or "").strip(),
    }
    changed = [name for name, value in secrets.items() if value]
    for name, value in secrets.items():
        if not value and not getattr(connection, name):
            raise DomainError("this is required", field=name)
    if secrets["contact_secret"] and len(secrets["contact_secret"]) > 128:
        raise DomainError("the secret is longer than 128 characters", field="contact_secret")
    if secrets["callback_token"] and not CALLBACK_TOKEN.fullmatch(secrets["callback_token"]):
        raise DomainError("the token is up to 32 letters and digits", field="callback_token")
    if secrets["encoding_aes_key"] and not KEY_PATTERN.fullmatch(secrets["encoding_aes_key"]):
        raise DomainError(
            "the EncodingAESKey is exactly 43 letters and digits", field="encoding_aes_key"
        )
    agent_id = (agent_id or "").strip()
    if agent_id and not agent_id.isdigit():
        raise DomainError("the agent id is a number", field="agent_id")
    if corp_id != connection.corp_id:
        changed.append("corp_id")
    connection.corp_id = corp_id
    connection.agent_id = agent_id
    for name, value in secrets.items():
        if value:
            setattr(connection, name, value)
    connection.save()
    audit_record(
        actor=actor,
        action=AuditLog.Action.CREATE if creating else AuditLog.Action.UPDATE,
        target=connection,
        summary=f"WeCom connection {corp_id}",
        detail={"changed": sorted(changed)},  # names only: never the secrets themselves
        ip=ip,
    )
    return connection


HINTS = {
    40001: "the secret is wrong",
    40013: "the corp id is wrong",
    40091: "the secret is not valid",
    60020: "this server's IP is not in the app's trusted IPs (企业可信IP)",
    48002: "the secret may not call the customer-contact API",
    NETWORK: "WeCom could not be reached",
}


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    follow_users: int = 0


def connection_test(*, connection: Connection) -> ConnectionCheck:
    """Fetch a token and the follow-user list; records and returns the outcome."""
    try:
        with WecomClient.for_connection(connection) as api:
            users = api.follow_users()
    except WecomError as exc:
        hint = HINTS.get(exc.errcode, "")
        message = f"{exc.path}: {exc.errcode} {exc.errmsg}" + (f" — {hint}" if hint else "")
        check = ConnectionCheck(ok=False, message=message)
    else:
        check = ConnectionCheck(ok=True, message="", follow_users=len(users))
    connection.last_test_at = timezone.now()
    connection.last_test_ok = check.ok
    connection.last_test_message = check.message[:300]
    connection.save(update_fields=["last_test_at", "last_test_ok", "last_test_message"])
    return check


# Receiving callbacks ----------------------------------------------------------------------------


def callback_receive(*, inbound: Inbound) -> Callback | None:
    """Store a verified callback and queue its processing after the commit.

    Returns None for a replay: the same nonce and timestamp, or the same message, seen before.
    """
    from siyu.channels.wecom.tasks import callback_process_task

    if Callback.objects.filter(nonce=inbound.nonce, timestamp=inbound.timestamp).exists():
        return None
    callback = Callback(
        digest=hashlib.sha1(inbound.xml.encode()).hexdigest(),
        nonce=inbound.nonce,
        timestamp=inbound.timestamp,
        event=inbound.fields.get("Event", "")[:64],
        change_type=inbound.fields.get("ChangeType", "")[:64],
        xml=inbound.xml,
    )
    try:
        with transaction.atomic():
            callback.save()
    except IntegrityError:
        return None  # the digest is taken: WeCom (or someone replaying it) sent it before
    transaction.on_commit(lambda: callback_process_task(callback.pk))
    return callback


def callback_process(*, callback_id: int) -> Callback:
    """Apply a stored callback once. A failure is recorded on the row (error, attempts) and
    left for callbacks_retry; a processed row is not processed again."""
    callback = Callback.objects.get(pk=callback_id)
    if callback.processed_at is not None:
        return callback
    handler = HANDLERS.get((callback.event, callback.change_type))
    try:
        if handler is None:
            log.warning(
                "wecom callback %s: unknown event %s, acknowledged and ignored",
                callback.pk,
                callback.kind,
            )
        else:
            connection = connection_get()
            if connection is None:
                raise DomainError("the WeCom connection is not set up")
            with WecomClient.for_connection(connection) as api:
                handler(callback, parse_xml(callback.xml), api)
    except Exception as exc:
        # Recorded on the row either way, so the console shows it and the retry is bounded;
        # anything but WeCom or a refused input is a bug and logged with its traceback.
        Callback.objects.filter(pk=callback.pk).update(
            attempts=F("attempts") + 1, error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        expected = isinstance(exc, WecomError | DomainError)
        (log.warning if expected else log.exception)(
            "wecom callback %s (%s) failed: %s", callback.pk, callback.kind, exc
        )
        callback.refresh_from_db()
        return callback
    Callback.objects.filter(pk=callback.pk).update(
        attempts=F("attempts") + 1, error="", processed_at=timezone.now()
    )
    callback.refresh_from_db()
    return callback


def callbacks_retry() -> int:
    """Process again the callbacks that failed; returns how many are now processed."""
    ids = callbacks_pending_ids(older_than=timezone.now() - RETRY_AFTER, max_attempts=MAX_ATTEMPTS)
    done = 0
    for pk in ids:
        done += callback_process(callback_id=pk).processed_at is not None
    return done


# Event handlers ---------------------------------------------------------------------------------

Handler = Callable[[Callback, dict, WecomClient], None]


def _at(fields: dict, name: str = "CreateTime") -> datetime:
    raw = fields.get(name, "")
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw), tz=UTC)
    return timezone.now()


def _staff(userid: str) -> Staff | None:
    return Staff.objects.filter(wecom_userid=userid).first() if userid else None


def _required(fields: dict, *names: str) -> list[str]:
    values = [fields.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise DomainError("the callback lacks " + ", ".join(missing))
    return values


def _known_customer(external_userid: str) -> Customer | None:
    identity = (
        Identity.objects.filter(kind=Identity.Kind.WECOM_EXTERNAL, value=external_userid)
        .select_related("customer")
        .first()
    )
    return identity.customer if identity else None


def _resolve_contact(detail: dict, *, channel=None, seen_at=None) -> Customer:
    contact = detail.get("external_contact") or {}
    identifiers = [(Identity.Kind.WECOM_EXTERNAL, contact["external_userid"])]
    if contact.get("unionid"):
        identifiers.append((Identity.Kind.WECHAT_UNIONID, contact["unionid"]))
    attributes = {
        "name": (contact.get("name") or "")[:100],
        "gender": GENDERS.get(contact.get("gender") or 0, ""),
    }
    return customer_resolve(
        identifiers=identifiers,
        attributes=attributes,
        channel=channel,
        seen_at=seen_at,
        reason="WeCom contact",
    ).customer


def _follow(detail: dict, userid: str) -> dict:
    return next((f for f in detail.get("follow_user", []) if f.get("userid") == userid), {})


def _event(key: str, *, customer_id: int, type: str, at: datetime, properties: dict) -> None:
    Event.objects.bulk_create(
        [
            Event(
                customer_id=customer_id,
                type=type,
                occurred_at=at,
                properties=properties,
                source="wecom",
                idempotency_key=key[:100],
            )
        ],
        ignore_conflicts=True,
    )


def _contact_added(callback: Callback, fields: dict, api: WecomClient, *, half: bool) -> None:
    userid, external_userid = _required(fields, "UserID", "ExternalUserID")
    state = fields.get("State", "")
    detail = api.external_contact(external_userid)
    staff = _staff(userid)
    code = ChannelCode.objects.filter(state=state).select_related("welcome_script").first()
    follow = _follow(detail, userid)
    added_at = (
        datetime.fromtimestamp(int(follow["createtime"]), tz=UTC)
        if str(follow.get("createtime", "")).isdigit()
        else _at(fields)
    )
    with transaction.atomic():
        customer = _resolve_contact(
            detail, channel=code.channel if code else None, seen_at=added_at
        )
        if staff is None:
            log.warning("wecom callback %s: no staff has WeCom user id %s", callback.pk, userid)
        else:
            Relationship.objects.update_or_create(
                staff=staff,
                customer=customer,
                defaults={
                    "added_at": added_at,
                    "state": state[:64],
                    "remark": (follow.get("remark") or "")[:100],
                    "channel": code.channel if code else None,
                    "status": Relationship.Status.ACTIVE,
                    "removed_at": None,
                    "removed_by": "",
                },
            )
            # The first staff member a customer adds owns them until someone reassigns.
            Customer.objects.filter(pk=customer.pk, owner__isnull=True).update(
                owner=staff, store=staff.store
            )
        if code is not None:
            for tag in code.tags.filter(rule__isnull=True):
                tags_assign(customer_ids=[customer.pk], tag=tag, source=Source.WECOM)
        _event(
            f"wecom:{callback.digest}",
            customer_id=customer.pk,
            type="wecom_contact_added",
            at=added_at,
            properties={
                "staff_id": staff.pk if staff else None,
                "staff_userid": userid,
                "state": state,
                "channel_code_id": code.pk if code else None,
                "half": half,
            },
        )
    welcome_code = fields.get("WelcomeCode", "")
    if welcome_code and code and code.welcome_script and callback.welcome_sent_at is None:
        _send_welcome(callback, api, welcome_code, code, customer, staff)
    if code is not None and staff is not None:
        _mark_code_tags(api, code, userid, external_userid)
    if code is not None and code.daily_cap:
        channel_code_rebalance(code=code, api=api)


# WeCom unreachable or busy: the callback is processed again (everything above is idempotent).
MARK_TAG_RETRY = {-2, -1, 45009, 45033}


def _mark_code_tags(api, code: ChannelCode, userid: str, external_userid: str) -> None:
    """The code's tags that mirror a WeCom corp tag are put on the contact in WeCom too, so the
    staff member sees them in the client. A tag WeCom refuses (deleted there) is logged."""
    wecom_ids = list(
        CorpTag.objects.filter(tag__in=code.tags.all()).values_list("wecom_id", flat=True)
    )
    if not wecom_ids:
        return
    payload = {"userid": userid, "external_userid": external_userid, "add_tag": wecom_ids}
    try:
        api.call("POST", "externalcontact/mark_tag", json=payload)
    except WecomError as exc:
        if exc.errcode in MARK_TAG_RETRY:
            raise
        log.warning("mark_tag for code %s refused: %s %s", code.state, exc.errcode, exc.errmsg)


def _send_welcome(callback, api, welcome_code, code, customer, staff) -> None:
    customer.refresh_from_db()
    text = render_script(code.welcome_script.body, customer=customer, staff=staff)
    try:
        api.send_welcome_msg(welcome_code=welcome_code, text=text)
    except WecomError as exc:
        if exc.errcode not in WELCOME_SPENT:
            raise  # WeCom unreachable: the retry may still be inside the code's 20 s
        log.info("wecom callback %s: welcome not sent (%s)", callback.pk, exc.errcode)
    callback.welcome_sent_at = timezone.now()
    Callback.objects.filter(pk=callback.pk).update(welcome_sent_at=callback.welcome_sent_at)


def contact_added(callback: Callback, fields: dict, api: WecomClient) -> None:
    _contact_added(callback, fields, api, half=False)


def contact_half_added(callback: Callback, fields: dict, api: WecomClient) -> None:
    _contact_added(callback, fields, api, half=True)


def contact_edited(callback: Callback, fields: dict, api: WecomClient) -> None:
    """A remark or tag changed in WeCom: refresh the customer, the relationship and the
    customer's WeCom corp tags (added and removed here to match)."""
    userid, external_userid = _required(fields, "UserID", "ExternalUserID")
    detail = api.external_contact(external_userid)
    staff = _staff(userid)
    follow = _follow(detail, userid)
    wecom_tags = {
        t["tag_id"]
        for f in detail.get("follow_user", [])
        for t in f.get("tags", [])
        if "tag_id" in t
    }
    with transaction.atomic():
        customer = _resolve_contact(detail)
        if staff is not None and follow:
            Relationship.objects.filter(staff=staff, customer=customer).update(
                remark=(follow.get("remark") or "")[:100]
            )
        wanted = set(
            CorpTag.objects.filter(wecom_id__in=wecom_tags).values_list("tag_id", flat=True)
        )
        # Tags changed in Siyu and not yet pushed to WeCom: Siyu's newer state wins.
        unpushed = TagMark.objects.filter(customer=customer).values("corp_tag__tag_id")
        mirrored = CorpTag.objects.values("tag_id").exclude(tag_id__in=unpushed)
        wanted -= set(
            TagMark.objects.filter(customer=customer).values_list("corp_tag__tag_id", flat=True)
        )
        have = set(
            CustomerTag.objects.filter(customer=customer, tag_id__in=mirrored).values_list(
                "tag_id", flat=True
            )
        )
        for tag in Tag.objects.filter(pk__in=wanted - have, rule__isnull=True):
            tags_assign(customer_ids=[customer.pk], tag=tag, source=Source.WECOM)
        for tag in Tag.objects.filter(pk__in=have - wanted, rule__isnull=True):
            tags_remove(customer_ids=[customer.pk], tag=tag, source=Source.WECOM)


def _relationship_removed(fields: dict, removed_by: str) -> None:
    userid, external_userid = _required(fields, "UserID", "ExternalUserID")
    staff, customer = _staff(userid), _known_customer(external_userid)
    if staff is None or customer is None:
        log.info("wecom: removal of %s by %s concerns nobody known here", external_userid, userid)
        return
    Relationship.objects.filter(staff=staff, customer=customer).update(
        status=Relationship.Status.REMOVED, removed_at=_at(fields), removed_by=removed_by
    )


def contact_deleted(callback: Callback, fields: dict, api: WecomClient) -> None:
    """The staff member deleted the customer, or WeCom did as part of a transfer."""
    by_transfer = fields.get("Source") == "DELETE_BY_TRANSFER"
    removed_by = Relationship.RemovedBy.TRANSFER if by_transfer else Relationship.RemovedBy.STAFF
    _relationship_removed(fields, removed_by)


def follow_user_deleted(callback: Callback, fields: dict, api: WecomClient) -> None:
    """The customer deleted the staff member: an outflow (流失)."""
    _relationship_removed(fields, Relationship.RemovedBy.CUSTOMER)


def transfer_failed(callback: Callback, fields: dict, api: WecomClient) -> None:
    userid, external_userid = _required(fields, "UserID", "ExternalUserID")
    customer = _known_customer(external_userid)
    if customer is None:
        log.info("wecom: failed transfer of unknown contact %s", external_userid)
        return
    _event(
        f"wecom:{callback.digest}",
        customer_id=customer.pk,
        type="wecom_transfer_failed",
        at=_at(fields),
        properties={"staff_userid": userid, "reason": fields.get("FailReason", "")},
    )


def group_changed(callback: Callback, fields: dict, api: WecomClient) -> None:
    """A customer group was created or changed: read it from WeCom and settle its members."""
    (chat_id,) = _required(fields, "ChatId")
    chat = {**api.group_chat(chat_id), "chat_id": chat_id}
    group_store(chat=chat, at=_at(fields), key=f"wecom:{callback.digest}")


@transaction.atomic
def group_store(*, chat: dict, at: datetime, key: str) -> CustomerGroup:
    """Store a group as groupchat/get describes it and settle its members.

    Members who are customers known here are linked (one query for the lot) and get a
    group_joined or group_left event (idempotent under `key`); external members not yet known
    stay unlinked until they become known (a contact add or a sync).
    """
    chat_id = chat["chat_id"]
    members = {m["userid"]: m for m in chat.get("member_list", []) if m.get("userid")}
    group, _ = CustomerGroup.objects.update_or_create(
        chat_id=chat_id,
        defaults={
            "name": (chat.get("name") or "")[:100],
            "owner_userid": chat.get("owner", ""),
            "owner": _staff(chat.get("owner", "")),
            "notice": chat.get("notice") or "",
            "status": CustomerGroup.Status.ACTIVE,
            "created_at_wecom": _timestamp(chat.get("create_time")),
            "member_version": str(chat.get("member_version", ""))[:64],
            "refreshed_at": timezone.now(),
        },
    )
    before = dict(GroupMember.objects.filter(group=group).values_list("userid", "customer_id"))
    externals = [u for u, m in members.items() if m.get("type") == GroupMember.Type.EXTERNAL]
    customers = dict(
        Identity.objects.filter(kind=Identity.Kind.WECOM_EXTERNAL, value__in=externals).values_list(
            "value", "customer_id"
        )
    )
    staff_ids = dict(
        Staff.objects.filter(wecom_userid__in=list(members)).values_list("wecom_userid", "pk")
    )
    GroupMember.objects.bulk_create(
        [
            GroupMember(
                group=group,
                userid=userid,
                type=m.get("type") or GroupMember.Type.EXTERNAL,
                customer_id=customers.get(userid),
                staff_id=staff_ids.get(userid),
                joined_at=_timestamp(m.get("join_time")),
                join_scene=m.get("join_scene"),
                invitor=((m.get("invitor") or {}).get("userid", ""))[:64],
                state=(m.get("state") or "")[:30],
            )
            for userid, m in members.items()
        ],
        update_conflicts=True,
        unique_fields=["group", "userid"],
        update_fields=["customer", "staff", "type"],
    )
    gone = [u for u in before if u not in members]
    GroupMember.objects.filter(group=group, userid__in=gone).delete()
    props = {"group_id": group.pk, "chat_id": chat_id, "group_name": group.name}
    Event.objects.bulk_create(
        [
            Event(
                customer_id=customers[u],
                type="group_joined",
                occurred_at=_timestamp(members[u].get("join_time")) or at,
                properties={**props, "join_scene": members[u].get("join_scene")},
                source="wecom",
                idempotency_key=f"{key}:joined:{customers[u]}"[:100],
            )
            for u in externals
            if u in customers and before.get(u) is None
        ]
        + [
            Event(
                customer_id=before[u],
                type="group_left",
                occurred_at=at,
                properties=props,
                source="wecom",
                idempotency_key=f"{key}:left:{before[u]}"[:100],
            )
            for u in gone
            if before[u] is not None
        ],
        ignore_conflicts=True,
    )
    return group


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if str(value or "").isdigit() else None


def group_dismissed(callback: Callback, fields: dict, api: WecomClient) -> None:
    (chat_id,) = _required(fields, "ChatId")
    CustomerGroup.objects.update_or_create(
        chat_id=chat_id,
        defaults={"status": CustomerGroup.Status.DISMISSED, "dismissed_at": _at(fields)},
    )


def corp_tags_changed(callback: Callback, fields: dict, api: WecomClient) -> None:
    corp_tags_refresh(api=api)


@transaction.atomic
def corp_tags_refresh(*, api: WecomClient) -> None:
    """Mirror WeCom's corp tags: one Siyu tag group per WeCom tag group, one tag per tag;
    groups and tags gone from WeCom are deleted here too (their assignments end in history)."""
    groups = api.corp_tags()
    seen_groups, seen_tags = set(), set()
    # Siyu's own changes not yet pushed (corptags.py) win: a name is not reverted, and a tag
    # deleted here is not brought back before WeCom deletes it too.
    unpushed = dict(
        CorpTagOp.objects.filter(status=CorpTagOp.Status.PENDING)
        .exclude(wecom_id="")
        .values_list("wecom_id", "kind")
    )
    for g in groups:
        seen_groups.add(g["group_id"])
        if unpushed.get(g["group_id"]) == CorpTagOp.Kind.DELETE:
            continue
        link = CorpTagGroup.objects.filter(wecom_id=g["group_id"]).select_related("tag_group")
        mirror = link.first()
        name = _free_group_name((g.get("group_name") or g["group_id"])[:50], mirror)
        if mirror is None:
            tag_group = TagGroup.objects.create(
                name=name, dimension=settings.SIYU_WECOM_TAG_DIMENSION, order=g.get("order") or 0
            )
            CorpTagGroup.objects.create(wecom_id=g["group_id"], tag_group=tag_group)
        elif unpushed.get(g["group_id"]) == CorpTagOp.Kind.RENAME:
            tag_group = mirror.tag_group
        else:
            tag_group = mirror.tag_group
            TagGroup.objects.filter(pk=tag_group.pk).update(name=name, order=g.get("order") or 0)
        for t in g.get("tag", []):
            seen_tags.add(t["id"])
            if t["id"] in unpushed:
                continue
            tag_name = (t.get("name") or t["id"])[:50]
            existing = CorpTag.objects.filter(wecom_id=t["id"]).select_related("tag").first()
            if existing is None:
                tag, _ = Tag.objects.get_or_create(
                    group=tag_group, name=tag_name, defaults={"order": t.get("order") or 0}
                )
                CorpTag.objects.create(wecom_id=t["id"], tag=tag)
            else:
                Tag.objects.filter(pk=existing.tag_id).update(
                    group=tag_group, name=tag_name, order=t.get("order") or 0
                )
    # Unlinked before deleting: WeCom deleted them, so nothing is sent back (corptags.py).
    for gone in CorpTag.objects.exclude(wecom_id__in=seen_tags).select_related("tag"):
        tag = gone.tag
        gone.delete()
        tag_delete(tag=tag)
    for gone in CorpTagGroup.objects.exclude(wecom_id__in=seen_groups).select_related("tag_group"):
        group = gone.tag_group
        CorpTag.objects.filter(tag__group=group).delete()
        gone.delete()
        tag_group_delete(group=group)


def _free_group_name(name: str, mirror: CorpTagGroup | None) -> str:
    """Tag group names are unique: a WeCom group named like a Siyu group gets a suffix."""
    taken = TagGroup.objects.filter(name=name)
    if mirror is not None:
        taken = taken.exclude(pk=mirror.tag_group_id)
    return name if not taken.exists() else f"{name[:40]} (WeCom)"


# Channel codes ----------------------------------------------------------------------------------

STATE = re.compile(r"[A-Za-z0-9_-]{1,30}")
MAX_WAY_USERS = 100  # WeCom: at most 100 users per contact way (41041)


@dataclass(frozen=True)
class CodeInput:
    name: str
    staff: list[Staff]
    tags: list[Tag]
    welcome_script: Script | None
    channel: Channel | None
    spend: Decimal
    daily_cap: int
    skip_verify: bool


def _clean_code(data: CodeInput) -> list[str]:
    """The pool's WeCom user ids; raises DomainError naming the field."""
    if not (data.name or "").strip() or len(data.name) > 100:
        raise DomainError("a name of 1 to 100 characters is required", field="name")
    if not data.staff:
        raise DomainError("choose at least one staff member", field="staff")
    if len(data.staff) > MAX_WAY_USERS:
        raise DomainError(f"a code holds at most {MAX_WAY_USERS} staff members", field="staff")
    unmapped = [s.name for s in data.staff if not s.wecom_userid]
    if unmapped:
        raise DomainError(
            "these staff members have no WeCom user id: " + ", ".join(unmapped), field="staff"
        )
    if data.spend < 0:
        raise DomainError("the spend cannot be negative", field="spend")
    return [s.wecom_userid for s in sorted(data.staff, key=lambda s: s.pk)]


def wecom_api() -> WecomClient:
    connection = connection_get()
    if connection is None:
        raise DomainError("the WeCom connection is not set up")
    return WecomClient.for_connection(connection)


def _wecom_refused(exc: WecomError) -> DomainError:
    return DomainError(f"WeCom refused: {exc.errcode} {exc.errmsg}")


def channel_code_create(
    *, actor, state: str, data: CodeInput, ip: str | None = None
) -> ChannelCode:
    """Create the WeCom contact way, then the code. Raises DomainError for bad input, a taken
    state, or WeCom refusing (nothing is kept then)."""
    state = (state or "").strip()
    if not STATE.fullmatch(state):
        raise DomainError("the state is 1 to 30 letters, digits, - or _", field="state")
    if ChannelCode.objects.filter(state=state).exists():
        raise DomainError("another channel code has this state", field="state")
    users = _clean_code(data)
    with wecom_api() as api:
        try:
            way = api.contact_way_add(
                users=users, state=state, remark=data.name[:30], skip_verify=data.skip_verify
            )
        except WecomError as exc:
            raise _wecom_refused(exc) from exc
        try:
            with transaction.atomic():
                code = ChannelCode.objects.create(
                    state=state,
                    name=data.name.strip(),
                    channel=data.channel,
                    welcome_script=data.welcome_script,
                    spend=data.spend,
                    daily_cap=data.daily_cap,
                    skip_verify=data.skip_verify,
                    config_id=way["config_id"],
                    qr_code=way.get("qr_code") or "",
                    wecom_users=users,
                )
                code.staff.set(data.staff)
                code.tags.set(data.tags)
                audit_record(
                    actor=actor,
                    action=AuditLog.Action.CREATE,
                    target=code,
                    summary=f"channel code {code.name}",
                    detail={"state": state, "staff": users},
                    ip=ip,
                )
        except Exception:
            # The way exists in WeCom but not here: remove it rather than leave an orphan.
            api.contact_way_delete(config_id=way["config_id"])
            raise
    return code


def channel_code_update(
    *, actor, code: ChannelCode, data: CodeInput, ip: str | None = None
) -> ChannelCode:
    """Change the code and its contact way; the state stays (past adds carry it)."""
    users = _clean_code(data)
    with wecom_api() as api:
        try:
            api.contact_way_update(
                config_id=code.config_id,
                users=users,
                remark=data.name[:30],
                skip_verify=data.skip_verify,
            )
        except WecomError as exc:
            raise _wecom_refused(exc) from exc
        with transaction.atomic():
            code.name = data.name.strip()
            code.channel, code.welcome_script = data.channel, data.welcome_script
            code.spend, code.daily_cap, code.skip_verify = (
                data.spend,
                data.daily_cap,
                data.skip_verify,
            )
            code.wecom_users = users
            code.save()
            code.staff.set(data.staff)
            code.tags.set(data.tags)
            audit_record(
                actor=actor,
                action=AuditLog.Action.UPDATE,
                target=code,
                summary=f"channel code {code.name}",
                detail={"staff": users},
                ip=ip,
            )
        channel_code_rebalance(code=code, api=api)
    return code


def channel_code_delete(*, actor, code: ChannelCode, ip: str | None = None) -> None:
    """Delete the contact way in WeCom, then the code (relationships keep their state)."""
    with wecom_api() as api:
        try:
            api.contact_way_delete(config_id=code.config_id)
        except WecomError as exc:
            raise _wecom_refused(exc) from exc
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditLog.Action.DELETE,
            target=code,
            summary=f"channel code {code.name}",
            detail={"state": code.state},
            ip=ip,
        )
        code.delete()


def channel_code_rebalance(*, code: ChannelCode, api: WecomClient) -> list[str]:
    """Offer the code's staff that are under today's cap (all when none is); when every one
    is at the cap, those with the fewest adds, so no customer meets a dead code. Updates the
    WeCom contact way only when the list changes. Returns the offered user ids."""
    pool = sorted(code.staff.exclude(wecom_userid=None), key=lambda s: s.pk)
    if not pool or not code.config_id:
        return list(code.wecom_users)
    adds = channel_code_adds_today(code)
    counts = {s.wecom_userid: adds.get(s.pk, 0) for s in pool}
    if code.daily_cap:
        offered = [u for u, n in counts.items() if n < code.daily_cap]
        if not offered:
            fewest = min(counts.values())
            offered = [u for u, n in counts.items() if n == fewest]
    else:
        offered = list(counts)
    if offered != list(code.wecom_users):
        api.contact_way_update(
            config_id=code.config_id,
            users=offered,
            remark=code.name[:30],
            skip_verify=code.skip_verify,
        )
        code.wecom_users = offered
        code.save(update_fields=["wecom_users"])
    return offered


def channel_code_adds_today(code: ChannelCode) -> dict[int, int]:
    """Adds through the code today (the organisation's zone), per staff id: one grouped query."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Relationship.objects.filter(state=code.state, added_at__gte=start)
        .values("staff_id")
        .annotate(n=Count("*"))
        .values_list("staff_id", "n")
        .order_by()
    )
    return dict(rows)


def channel_codes_reset_caps() -> int:
    """At midnight every capped code offers its whole pool again; returns codes changed."""
    changed = 0
    codes = ChannelCode.objects.filter(daily_cap__gt=0).exclude(config_id="")
    if not codes.exists():
        return 0
    with wecom_api() as api:
        for code in codes:
            before = list(code.wecom_users)
            changed += channel_code_rebalance(code=code, api=api) != before
    return changed


HANDLERS: dict[tuple[str, str], Handler] = {
    ("change_external_contact", "add_external_contact"): contact_added,
    ("change_external_contact", "add_half_external_contact"): contact_half_added,
    ("change_external_contact", "edit_external_contact"): contact_edited,
    ("change_external_contact", "del_external_contact"): contact_deleted,
    ("change_external_contact", "del_follow_user"): follow_user_deleted,
    ("change_external_contact", "transfer_fail"): transfer_failed,
    ("change_external_chat", "create"): group_changed,
    ("change_external_chat", "update"): group_changed,
    ("change_external_chat", "dismiss"): group_dismissed,
    ("change_external_tag", "create"): corp_tags_changed,
    ("change_external_tag", "update"): corp_tags_changed,
    ("change_external_tag", "delete"): corp_tags_changed,
    ("change_external_tag", "shuffle"): corp_tags_changed,
}
