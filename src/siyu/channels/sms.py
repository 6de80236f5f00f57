"""SMS through a configurable HTTP gateway (protocol in docs/campaigns.md, "SMS gateway").

Each message is one JSON POST to SIYU_SMS_GATEWAY_URL:

    {"to": "+8613900000000", "text": "…", "idempotency_key": "…"}

with `Authorization: Bearer <SIYU_SMS_API_KEY>`, `X-Siyu-Timestamp` (Unix seconds) and
`X-Siyu-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with SIYU_SMS_SECRET>`.
A 2xx answer carries {"id": "…"}; an error answer {"code": "…", "message": "…"}. 4xx other
than 408/429 is final (bad number, blocked, bad key); 408, 429, 5xx and network errors are
tried again.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Sequence

import httpx
from django.conf import settings

from siyu.channels.base import ChannelAdapter, Message, Result, register

RETRYABLE_STATUS = {408, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(data, dict):
        return f"HTTP {response.status_code}"
    code, text = data.get("code", ""), data.get("message", "")
    return f"HTTP {response.status_code} {code}: {text}".strip(": ")


@register
class SmsChannel(ChannelAdapter):
    name = "sms"
    address_kind = "phone"

    def send(self, messages: Sequence[Message]) -> list[Result]:
        url = settings.SIYU_SMS_GATEWAY_URL
        if not url:
            return [Result.failed("SIYU_SMS_GATEWAY_URL is not set") for _ in messages]
        with httpx.Client(timeout=settings.SIYU_SMS_TIMEOUT) as client:
            return [self._send_one(client, url, message) for message in messages]

    def _send_one(self, client: httpx.Client, url: str, message: Message) -> Result:
        body = json.dumps(
            {
                "to": message.address,
                "text": message.body,
                "idempotency_key": message.idempotency_key,
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {settings.SIYU_SMS_API_KEY}",
            "X-Siyu-Timestamp": timestamp,
            "X-Siyu-Signature": sign(settings.SIYU_SMS_SECRET, timestamp, body),
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return Result.failed(f"SMS gateway: {type(error).__name__}: {error}")
        if response.is_success:
            try:
                external_id = str(response.json().get("id", ""))
            except (ValueError, AttributeError):
                external_id = ""
            return Result.sent(external_id)
        retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        return Result.failed(_reason(response), retryable=retryable)
