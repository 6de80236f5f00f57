"""Outgoing webhook: each delivery is a JSON POST to the step's webhook subscription, signed as
every Siyu webhook is (siyu.webhooks.signing: `X-Siyu-Signature: t=…,v1=…`).

Body: {"idempotency_key", "campaign_id", "step_id", "variant", "customer_id", "staff_id",
"subject", "text"}; header X-Siyu-Delivery carries the idempotency key too, so a receiver
dedupes retries. A 2xx answer is sent; 408, 429, 5xx and network errors are tried again;
other answers fail at once.

Posts of a batch run PARALLEL at a time on a thread pool kept by the process; each thread keeps
one keep-alive connection per receiver (stdlib http.client: a post costs ~0.3 ms of CPU here,
httpx ~1.2 ms, which capped a worker at a few hundred posts a second).
"""

import http.client
import json
import os
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from siyu.channels.base import ChannelAdapter, Message, Result, register
from siyu.core.errors import DomainError
from siyu.webhooks import signing
from siyu.webhooks.addresses import check_host

EVENT = "campaign.delivery"
PARALLEL = 8
RETRYABLE_STATUS = {408, 429}
HEADERS = {"User-Agent": "Siyu-Campaigns/1", "Content-Type": "application/json"}
# Answers are not used; a receiver that sends more than this gets its connection closed.
MAX_ANSWER = 64 * 1024
# A kept connection the receiver closed while idle fails on its next use before any answer:
# that post goes again once on a new connection (its idempotency key makes a repeat harmless).
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

_local = threading.local()
_pool: tuple[int, ThreadPoolExecutor] | None = None
_tls: ssl.SSLContext | None = None


def _executor() -> ThreadPoolExecutor:
    # Kept between batches, so its threads keep their connections; a forked child makes its own.
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(PARALLEL, thread_name_prefix="siyu-webhook"))
    return _pool[1]


def _connection(parts: SplitResult) -> http.client.HTTPConnection:
    global _tls
    connections = _local.__dict__.setdefault("connections", {})
    key = (parts.scheme, parts.hostname, parts.port)
    if key not in connections:
        timeout = settings.SIYU_WEBHOOKS_TIMEOUT
        if parts.scheme == "https":
            _tls = _tls or ssl.create_default_context()  # ~0.1 s to build: once per process
            connections[key] = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=_tls
            )
        else:
            connections[key] = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=timeout
            )
    # A closed connection opens itself again on its next request.
    return connections[key]


def _post_once(connection: http.client.HTTPConnection, target: str, body: bytes, headers) -> int:
    connection.request("POST", target, body=body, headers=headers)
    response = connection.getresponse()
    response.read(MAX_ANSWER)
    if response.will_close or not response.isclosed():
        connection.close()  # the next post opens a new one
    return response.status


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST on this thread's kept connection to the receiver; returns the HTTP status.

    Raises OSError or http.client.HTTPException when the receiver cannot be reached."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**HEADERS, **headers}
    connection = _connection(parts)
    reused = connection.sock is not None
    try:
        return _post_once(connection, target, body, headers)
    except STALE:
        connection.close()
        if not reused:
            raise
    except BaseException:
        connection.close()
        raise
    try:
        return _post_once(connection, target, body, headers)
    except BaseException:
        connection.close()
        raise


def payload(message: Message) -> bytes:
    data = {
        "idempotency_key": message.idempotency_key,
        "campaign_id": message.extra.get("campaign_id"),
        "step_id": message.extra.get("step_id"),
        "variant": message.extra.get("variant", ""),
        "customer_id": message.customer_id,
        "staff_id": message.staff_id,
        "subject": message.subject,
        "text": message.body,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@register
class WebhookChannel(ChannelAdapter):
    name = "webhook"
    address_kind = ""  # the address is the step's subscription, not the customer's

    def send(self, messages: Sequence[Message]) -> list[Result]:
        refused: dict[str, str] = {}
        for url in {m.extra.get("url", "") for m in messages}:
            refused[url] = self._refusal(url)
        if not messages:
            return []
        # One task per thread, not per post: a future per message cost more than its post.
        size = -(-len(messages) // PARALLEL)
        chunks = [messages[start : start + size] for start in range(0, len(messages), size)]
        posted = _executor().map(lambda chunk: [self._post(m, refused) for m in chunk], chunks)
        return [result for chunk in posted for result in chunk]

    @staticmethod
    def _refusal(url: str) -> str:
        if not url:
            return "the step has no webhook"
        parts = urlsplit(url)
        try:
            # Checked at each batch: the name may point somewhere else since it was saved.
            check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except DomainError as error:
            return error.message
        return ""

    @staticmethod
    def _post(message: Message, refused: dict[str, str]) -> Result:
        url = message.extra.get("url", "")
        if refused.get(url):
            return Result.failed(refused[url], retryable=False)
        body = payload(message)
        headers = {
            signing.SIGNATURE_HEADER: signing.sign(message.extra.get("secret", ""), body),
            signing.EVENT_HEADER: EVENT,
            signing.DELIVERY_HEADER: message.idempotency_key,
        }
        try:
            code = post(url, body, headers)
        except (OSError, http.client.HTTPException) as error:
            return Result.failed(f"webhook: {type(error).__name__}: {error}")
        if 200 <= code < 300:
            return Result.sent()
        retryable = code >= 500 or code in RETRYABLE_STATUS
        return Result.failed(f"HTTP {code}", retryable=retryable)
