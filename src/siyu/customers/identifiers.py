"""Normalising identifiers so the same person always yields the same identity value."""

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from pypinyin import Style, lazy_pinyin

from siyu.core.errors import DomainError
from siyu.customers.models import Identity

MAX_VALUE_LENGTH = 191
# Platforms hide numbers in exports as 138****1234; such a value is display data, never identity.
MASKED_PHONE = re.compile(r"\d*[*＊xX]{3,}\d*")
# Virtual numbers: a full mobile followed by an extension (13812341234-1234, …转1234).
EXTENSION = re.compile(r"\d{11}[-－_]\d{1,6}$|[转#,;~]|ext", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f\s]")
# Kind.values rebuilds its list on every access; event ingestion checks the kind per event.
KINDS = frozenset(Identity.Kind.values)


@dataclass(frozen=True)
class Identifier:
    kind: str
    value: str
    namespace: str = ""

    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.value)


@lru_cache(maxsize=4)
def _plain_mobile_prefixes(region: str) -> frozenset[str]:
    """4-digit prefixes (1300…1999) under which phonenumbers calls every 11-digit number valid
    in mainland China; empty for other default regions."""
    if region != "CN":
        return frozenset()

    def valid(number: str) -> bool:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, "CN"))

    return frozenset(
        prefix
        for prefix in map(str, range(1300, 2000))
        if all(valid(prefix + tail) for tail in ("0000000", "5555555", "9999999"))
    )


def plain_mobile_e164(text: str) -> str | None:
    """E.164 of a plain 11-digit mainland mobile, the common case in imports and events,
    without a round of phonenumbers (whose answer it is); None for anything else."""
    if (
        len(text) == 11
        and text.isascii()
        and text.isdigit()
        and text[:4] in _plain_mobile_prefixes(settings.SIYU_PHONE_REGION)
    ):
        return "+86" + text
    return None


def normalize_phone(raw: str) -> str:
    text = str(raw).strip()
    if e164 := plain_mobile_e164(text):
        return e164
    if not text:
        raise DomainError("phone is empty", field="phone")
    if MASKED_PHONE.search(text):
        raise DomainError(
            f"{text!r} is a masked number and cannot identify a person", field="phone"
        )
    if EXTENSION.search(re.sub(r"[\s()]", "", text)):
        raise DomainError(f"{text!r} is a virtual number with an extension", field="phone")
    try:
        number = phonenumbers.parse(re.sub(r"[\s()\-.]", "", text), settings.SIYU_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise DomainError(f"{text!r} is not a phone number", field="phone") from exc
    if number.extension:
        raise DomainError(f"{text!r} is a virtual number with an extension", field="phone")
    if not phonenumbers.is_valid_number(number):
        raise DomainError(f"{text!r} is not a valid phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    value = str(raw).strip().lower()
    try:
        validate_email(value)
    except ValidationError as exc:
        raise DomainError(f"{raw!r} is not an e-mail address", field="email") from exc
    return value


def normalize_identifier(kind: str, value: str, namespace: str = "") -> Identifier:
    """Return the canonical identifier or raise DomainError naming what is wrong."""
    value = normalize_value(kind, value)
    namespace = str(namespace or "").strip()
    if kind == Identity.Kind.WECHAT_OPENID:
        if not namespace:
            raise DomainError("a WeChat openid needs the app id it belongs to", field="namespace")
    else:
        namespace = ""
    return Identifier(kind=kind, value=value, namespace=namespace)


def normalize_value(kind: str, value: str) -> str:
    """The canonical value of an identifier of this kind, or DomainError naming what is wrong.
    Without the Identifier around it, for event ingestion, which calls it once per event."""
    if kind == "phone" and type(value) is str and (e164 := plain_mobile_e164(value)):
        return e164  # the common case, first
    if kind not in KINDS:
        known = ", ".join(Identity.Kind.values)
        raise DomainError(f"unknown identity kind {kind!r}; known kinds: {known}", field="kind")
    if value is None:
        raise DomainError(f"{kind} is empty", field=kind)
    if kind == Identity.Kind.PHONE:
        return _checked_length(kind, normalize_phone(value))
    if kind == Identity.Kind.EMAIL:
        return _checked_length(kind, normalize_email(value))
    value = str(value).strip()
    if not value:
        raise DomainError(f"{kind} is empty", field=kind)
    if CONTROL.search(value):
        raise DomainError(f"{kind} must not contain spaces or control characters", field=kind)
    return _checked_length(kind, value)


def _checked_length(kind: str, value: str) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        raise DomainError(f"{kind} is longer than {MAX_VALUE_LENGTH} characters", field=kind)
    return value


def name_pinyin(name: str) -> tuple[str, str]:
    """Pinyin and initials of a person's name, cached by surname and given name.

    Bulk loads meet millions of names made of a few thousand given names; caching the parts
    rather than whole names keeps the cache small and its hit rate high.
    """
    surname, given = pinyin_of(name[:1]), pinyin_of(name[1:])
    return (surname[0] + given[0])[:200], (surname[1] + given[1])[:50]


@lru_cache(maxsize=65536)
def pinyin_of(text: str) -> tuple[str, str]:
    """Full pinyin and initials of a Chinese text, lower-case: 张三 → ("zhangsan", "zs")."""
    if not text:
        return "", ""
    full = "".join(lazy_pinyin(text, errors="default")).lower()
    initials = "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default")).lower()
    return CONTROL.sub("", full)[:200], CONTROL.sub("", initials)[:50]
