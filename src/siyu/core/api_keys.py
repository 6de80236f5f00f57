"""API keys: creation (the full key is returned once), revocation and authentication.

A key reads `siyu_<prefix>_<secret>`. The prefix finds the row; the SHA-256 of the whole key is
compared in constant time. The secret itself is never stored.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import ApiKey, AuditLog

KEY_PREFIX = "siyu"
# last_used_at is written at most this often per key, so requests do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by", "staff")


def api_key_get(pk: int) -> ApiKey:
    return ApiKey.objects.get(pk=pk)


def api_key_create(
    *, actor, name: str, scopes: Iterable[str], staff=None, ip: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key; return it with the full key text, which is not retrievable later.

    With `staff`, the key reads only what that staff member sees in the console."""
    name = name.strip()
    if not name:
        raise DomainError("a key needs a name", field="name")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise DomainError(
            "choose one or more of: " + ", ".join(ApiKey.Scope.values), field="scopes"
        )
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name[:100],
        prefix=prefix,
        secret_hash=_digest(raw_key),
        scopes=scopes,
        staff=staff,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action=AuditLog.Action.CREATE,
        target=key,
        summary=f"API key {key.name} ({prefix})",
        detail={"scopes": scopes, "reads_as": staff.name if staff else "admin"},
        ip=ip,
    )
    return key, raw_key


def api_key_revoke(*, actor, key: ApiKey, ip: str | None = None) -> None:
    if key.revoked_at is not None:
        return
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=AuditLog.Action.REVOKE,
        target=key,
        summary=f"API key {key.name} ({key.prefix})",
        ip=ip,
    )


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The live key that `raw_key` is, or None; records its use at most once a minute."""
    head, _, rest = raw_key.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    # A NUL would reach PostgreSQL, which refuses it in text with an error, not a miss.
    if head != KEY_PREFIX or not prefix or not secret or len(raw_key) > 200 or "\x00" in raw_key:
        return None
    key = (
        ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True)
        .select_related("staff")
        .first()
    )
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(raw_key.strip())):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
