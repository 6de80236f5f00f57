"""Outgoing webhook: each delivery is a JSON POST to the step's webhook subscription, signed as
every Siyu webhook is (siyu.webhooks.signing: `X-Siyu-Signature: t=…,v1=…`).

Body: {"idempotency_key", "campaign_id", "step_id", "variant", "customer_id", "staff_id",
"subject", "text"}; header X-Siyu-Delivery carries the idempotency key too, so a receiver
dedupes retries. A 2xx answer is sent; 408, 429, 5xx and network errors are tried again;
other answers fail at once. Posts of a batch run a few at a time over one connection pool.
"""

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from siyu.channels.base import ChannelAdapter, Message, Result, register
from siyu.core.errors import DomainError
from siyu.webhooks import signing
from siyu.webhooks.addresses import check_host

EVENT = "campaign.delivery"
PARALLEL = 8
RETRYABLE_STATUS = {408, 429}


_CLIENT: httpx.Client | None = None


def _client() -> httpx.Client:
    # One pool per process, kept between batches: a new client costs a TLS context (~0.1 s)
    # and new connections to the receiver.
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = httpx.Client(
            timeout=settings.SIYU_WEBHOOKS_TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": "Siyu-Campaigns/1", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=PARALLEL),
        )
    return _CLIENT


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
        client = _client()
        with ThreadPoolExecutor(PARALLEL) as pool:
            return list(pool.map(lambda m: self._post(client, m, refused), messages))

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
    def _post(client: httpx.Client, message: Message, refused: dict[str, str]) -> Result:
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
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return Result.failed(f"webhook: {type(error).__name__}: {error}")
        if response.is_success:
            return Result.sent()
        code = response.status_code
        retryable = code >= 500 or code in RETRYABLE_STATUS
        return Result.failed(f"HTTP {code}", retryable=retryable)
