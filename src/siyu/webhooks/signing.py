"""Webhook signatures: `X-Siyu-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`.

The HMAC is over f"{t}.{body}" with the subscription's secret, so a receiver can check both
that Siyu sent the body and that it is recent (a replayed old request fails the tolerance).
Used by outgoing webhooks and by any other channel that posts signed JSON.
"""

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Siyu-Signature"
EVENT_HEADER = "X-Siyu-Event"
DELIVERY_HEADER = "X-Siyu-Delivery"
SECRET_PREFIX = "whsec_"


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old, or does not match the body."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The X-Siyu-Signature header value for `body`, signed now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, *, now: float | None = None
) -> int:
    """Check a received signature header against the raw body; return its timestamp.

    Raises SignatureError when the header is malformed, its time is more than `tolerance`
    seconds from now, or no v1 signature matches.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the signature's timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the signature header needs t= and v1=")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("the signature's timestamp is outside the tolerance")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("the signature does not match the body")
    return timestamp
