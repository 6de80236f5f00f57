"""The shape and limits of an ingested event; the API and the ingestion service share them."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ninja import Field, Schema
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticSerializationError, to_json

from siyu.core.errors import DomainError
from siyu.customers.identifiers import Identifier, normalize_identifier
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
        checked = Properties(value)
        checked.json = data.decode()
        return checked


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
