"""The shape and limits of an ingested event; the API and the ingestion service share them."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs these on Python 3.11
)

import pydantic
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as RequestInvalid
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError, from_json, to_json
from typing_extensions import TypedDict

from siyu.core.errors import DomainError
from siyu.customers.identifiers import Identifier, normalize_identifier, normalize_value
from siyu.customers.models import Identity

MAX_BATCH = 1_000
MAX_PROPERTIES = 50
MAX_PROPERTIES_BYTES = 8 * 1024  # as compact JSON in UTF-8
MAX_STRING = 1_000
MAX_DEPTH = 10
MAX_AGE = timedelta(days=5 * 365)
MAX_AHEAD = timedelta(days=1)
# NUL and other control characters: PostgreSQL refuses NUL in text and JSON alike.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Identity kinds sent as plain fields; a WeChat openid needs its app id alongside.
KINDS = [k for k in Identity.Kind.values if k != Identity.Kind.WECHAT_OPENID]
KIND_ORDER = {kind: position for position, kind in enumerate(KINDS)}


# Plain pydantic models for the input: ninja's Schema adds a root validator for reading Django
# objects that validated every item of a batch several times over.
class CustomerRef(BaseModel):
    """Any identifiers of the customer; at least one. Masked numbers (138****1234) are refused."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(None, max_length=191)
    email: str | None = Field(None, max_length=191)
    wecom_external_userid: str | None = Field(None, max_length=191)
    wechat_unionid: str | None = Field(None, max_length=191)
    wechat_openid: str | None = Field(None, max_length=191)
    wechat_appid: str | None = Field(None, max_length=64, description="app id of wechat_openid")
    tmall_buyer: str | None = Field(None, max_length=191)
    jd_buyer: str | None = Field(None, max_length=191)
    douyin_buyer: str | None = Field(None, max_length=191)
    xiaohongshu_buyer: str | None = Field(None, max_length=191)
    store_member_no: str | None = Field(None, max_length=191)

    @field_validator(*KINDS)
    @classmethod
    def _normalised(cls, value: str | None, info) -> str | None:
        if value is None:
            return None
        try:
            return normalize_identifier(info.field_name, value).value
        except DomainError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _some_identifier(self):
        if self.wechat_appid is not None and self.wechat_openid is None:
            raise ValueError("wechat_appid only goes with wechat_openid")
        if self.wechat_openid is not None:
            if not self.wechat_appid:
                raise ValueError("wechat_openid needs wechat_appid, the app it belongs to")
            try:
                normalize_identifier("wechat_openid", self.wechat_openid, self.wechat_appid)
            except DomainError as exc:
                raise ValueError(f"wechat_openid: {exc.message}") from None
        if self.wechat_openid is None and not self._given():
            raise ValueError("name the customer by at least one identifier")
        return self

    def identifiers(self) -> list[Identifier]:
        found = [Identifier(k, getattr(self, k)) for k in self._given()]
        if self.wechat_openid is not None and self.wechat_appid:
            found.append(Identifier("wechat_openid", self.wechat_openid, self.wechat_appid.strip()))
        return found

    def _given(self) -> list[str]:
        """The plain kinds sent with a value, in KINDS order. Usually one is sent: looking at
        the fields given beats asking every kind, once per event of a batch."""
        given = [
            k for k in self.model_fields_set if k in KIND_ORDER and getattr(self, k) is not None
        ]
        return sorted(given, key=KIND_ORDER.__getitem__) if len(given) > 1 else given


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: CustomerRef
    type: str = Field(..., min_length=1, max_length=60, pattern=r"^[a-zA-Z0-9_-]+$")
    occurred_at: AwareDatetime = Field(..., description="ISO 8601 with a time zone")
    properties: dict[str, Any] = Field(default_factory=dict)
    source: str = Field("", max_length=40)
    idempotency_key: str | None = Field(None, min_length=1, max_length=100)

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        now = datetime.now(UTC)  # timezone.now() reads settings.USE_TZ on every call
        if value < now - MAX_AGE:
            raise ValueError("is more than 5 years in the past")
        if value > now + MAX_AHEAD:
            raise ValueError("is more than 1 day in the future")
        return value

    @field_validator("source", "idempotency_key")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value and CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("properties")
    @classmethod
    def _bounded(cls, value: dict) -> dict:
        checked = Properties(value)
        checked.json = properties_json(value)
        return checked


def properties_json(value: dict) -> str:
    """An event's properties as compact JSON text, or a ValueError naming the broken limit."""
    if len(value) > MAX_PROPERTIES:
        raise ValueError(f"has more than {MAX_PROPERTIES} keys")
    # pydantic's serialiser writes the same compact JSON as json.dumps, five times faster;
    # it writes NaN and Infinity as such (to be spotted below) and fails on a lone surrogate.
    try:
        data = to_json(value, inf_nan_mode="constants")
    except (PydanticSerializationError, RecursionError):
        data = None
    # The text shows when the careful checks cannot fail: no string is longer than the
    # whole text, every level of nesting opens with { or [, and JSON writes a NUL as \u0000.
    # Anything suspicious (often a false alarm, such as a string holding "NaN") takes the
    # careful path, which names the problem.
    if (
        data is None
        or len(data) > MAX_STRING
        or data.count(b"{") + data.count(b"[") > MAX_DEPTH
        or b"\\u0000" in data
        or b"NaN" in data
        or b"Infinity" in data
    ):
        data = _checked_json(value)
    if len(data) > MAX_PROPERTIES_BYTES:
        raise ValueError(f"is larger than {MAX_PROPERTIES_BYTES} bytes as JSON")
    return data.decode()


def _checked_json(value: dict) -> bytes:
    """The properties as compact JSON in UTF-8, or a ValueError naming what is wrong."""
    _check_strings(value)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValueError("must not contain NaN or Infinity") from None
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" from the JSON body
        raise ValueError("must not contain unpaired surrogates") from None


class Properties(dict):
    """An event's properties, with the JSON text they were checked as: the insert reuses it
    instead of serialising them a second time."""

    __slots__ = ("json",)


def _check_strings(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"has a string longer than {MAX_STRING} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


class EventAccepted(Schema):
    status: str = Field(..., description="accepted or duplicate")


# Plain models for the per-item results too: ninja's Schema root validator cost ~15 ms per
# 1,000-item answer.
class ItemError(BaseModel):
    field: str
    reason: str


class ErrorOut(Schema):
    detail: str
    errors: list[ItemError] = Field(default_factory=list)


class ItemResult(BaseModel):
    index: int
    status: str = Field(..., description="accepted, duplicate or invalid")
    errors: list[ItemError] = Field(default_factory=list)


class BatchIn(Schema):
    # Items are checked one by one in the service, so one bad item does not reject the batch;
    # each has the shape of POST /events.
    events: list[dict[str, Any]] = Field(..., min_length=1, max_length=MAX_BATCH)


class BatchOut(Schema):
    accepted: int
    duplicate: int
    invalid: int
    results: list[ItemResult]


# The batch's fast path. Its items are checked in two steps: pydantic-core checks the shape of
# all of them at once (types, lengths, the type's pattern, the time's zone) against typed dicts
# that copy EventIn's fields without its Python validators (item by item when some item is of
# the wrong shape); then one plain loop does what those validators do, for the common case
# only (identifiers normalised without trouble, a plausible time, clean text, properties that
# pass the quick look). Whatever that loop is unsure of goes through EventIn itself, which
# judges it and words the reasons: both paths answer the same, and the slow one runs only for
# unusual items.
def _text(max_length: int, min_length: int = 0, pattern: str | None = None):
    return Annotated[
        str, StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern)
    ]


def _max_length(field) -> int:
    (length,) = (m.max_length for m in field.metadata if hasattr(m, "max_length"))
    return length


_CustomerWire = TypedDict(
    "_CustomerWire",
    {
        name: NotRequired[_text(_max_length(field)) | None]
        for name, field in CustomerRef.model_fields.items()
    },
)
_CustomerWire.__pydantic_config__ = ConfigDict(extra="forbid")


class _EventWire(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    customer: _CustomerWire
    type: _text(60, 1, r"^[a-zA-Z0-9_-]+$")
    occurred_at: AwareDatetime
    properties: NotRequired[dict[str, Any]]
    source: NotRequired[_text(40)]
    idempotency_key: NotRequired[_text(100, 1) | None]


EVENTS_WIRE = TypeAdapter(list[_EventWire])
EVENT_WIRE = TypeAdapter(_EventWire)
NO_PROPERTIES = "{}"


class Item:
    """A checked event as ingestion needs it: the customer's identity keys
    ((kind, namespace, value), normalised), and the properties as their JSON text."""

    __slots__ = ("idempotency_key", "keys", "occurred_at", "properties", "source", "type")

    def __init__(self, keys, type, occurred_at, properties, source, idempotency_key) -> None:
        self.keys = keys
        self.type = type
        self.occurred_at = occurred_at
        self.properties = properties
        self.source = source
        self.idempotency_key = idempotency_key

    @classmethod
    def of(cls, event: EventIn) -> "Item":
        props = event.properties
        return cls(
            tuple(i.key() for i in event.customer.identifiers()),
            event.type,
            event.occurred_at,
            props.json if isinstance(props, Properties) else properties_json(props),
            event.source,
            event.idempotency_key,
        )


def item_quick(wire: dict, earliest: datetime, latest: datetime) -> Item | None:
    """The Item of an event whose shape pydantic-core has checked, when the common case shows
    it valid; None when EventIn must judge it. Runs once per event of a batch: the common
    case (one identifier, printable text) takes the fewest steps."""
    at = wire["occurred_at"]
    if not earliest <= at <= latest:
        return None
    customer = wire["customer"]
    try:
        if len(customer) == 1:
            ((kind, value),) = customer.items()
            if value is None or kind not in KIND_ORDER:
                return None
            keys: tuple = ((kind, "", normalize_value(kind, value)),)
        elif (keys := _keys(customer)) is None:
            return None
    except DomainError:
        return None
    # Control characters are never printable: the regex runs only for unusual text.
    source = wire.get("source", "")
    if not source.isprintable() and CONTROL.search(source):
        return None
    key = wire.get("idempotency_key")
    if key is not None and not key.isprintable() and CONTROL.search(key):
        return None
    props = wire.get("properties")
    try:
        text = NO_PROPERTIES if props is None else properties_json(props)
    except ValueError:
        return None
    return Item(keys, wire["type"], at, text, source, key)


def _keys(customer: dict) -> tuple | None:
    keys = []
    for kind, value in customer.items():
        if value is not None:
            if kind not in KIND_ORDER:  # a WeChat openid and its app id
                return None
            keys.append((kind, "", normalize_value(kind, value)))
    if not keys:
        return None
    keys.sort(key=lambda key: KIND_ORDER[key[0]])
    return tuple(keys)


def time_window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - MAX_AGE, now + MAX_AHEAD


def batch_items(body: bytes) -> list[dict]:
    """The raw items of a batch body, `{"events": [...]}`; refuses the body as the API refuses
    any: 400 for JSON it cannot read, 422 naming the field for a wrong shape.

    Read here rather than by ninja, which would parse the JSON with the standard library and
    copy every item through BatchIn before the items are checked at all.
    """
    data: Any = None
    if body:
        try:
            data = from_json(body, allow_inf_nan=False)
        except ValueError:
            try:  # what pydantic-core refuses but the API's parser reads (lone surrogates)
                data = json.loads(body, parse_constant=_no_constant)
            except ValueError:
                raise HttpError(400, "Cannot parse request body") from None
    if type(data) is dict:
        events = data.get("events")
        if (
            type(events) is list
            and 0 < len(events) <= MAX_BATCH
            and all(type(e) is dict for e in events)
        ):
            return events
    try:
        return BatchIn.model_validate(data if data is not None else {}).events
    except pydantic.ValidationError as exc:
        where = ("body", "payload")
        raise RequestInvalid(
            [{**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _no_constant(constant: str):
    raise ValueError(f"{constant} is not valid JSON")
