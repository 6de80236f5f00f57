"""The one interface every channel adapter speaks (docs/campaigns.md, "Channels").

The sender hands an adapter a batch of rendered messages and gets one Result per message, in
the same order. A result is final (sent, failed) or asynchronous (accepted: the platform took
the job and tells the outcome later, as WeCom mass messages do); accepted deliveries are
settled by `poll` or by a callback that calls campaigns.services.delivery_result_record.

Adapters never touch the database of the delivery they send: the sender records results in
bulk. Each message carries an idempotency key that stays the same on every retry, so a peer
that dedupes by it receives each delivery exactly once even when a worker dies mid-send.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Outcome(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"  # taken by the platform; the result comes later
    FAILED = "failed"


@dataclass(frozen=True)
class Message:
    delivery_id: int
    idempotency_key: str
    customer_id: int
    address: str  # e-mail address, E.164 phone, WeCom external user id… ("" for staff tasks)
    body: str
    subject: str = ""
    staff_id: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    external_id: str = ""
    error: str = ""
    # A failure worth trying again (timeouts, 5xx, rate limited); False fails at once.
    retryable: bool = True

    @classmethod
    def sent(cls, external_id: str = "") -> "Result":
        return cls(Outcome.SENT, external_id=external_id)

    @classmethod
    def accepted(cls, external_id: str) -> "Result":
        return cls(Outcome.ACCEPTED, external_id=external_id)

    @classmethod
    def failed(cls, error: str, *, retryable: bool = True) -> "Result":
        return cls(Outcome.FAILED, error=error[:1000], retryable=retryable)


class ChannelAdapter:
    """Base of the adapters. Subclasses set `name` and implement `send`.

    `address_kind` says where the address comes from: "email" (an e-mail identity), "phone"
    (the customer's primary mobile), "owner" (the customer's owner staff) or "" (none needed).
    """

    name: ClassVar[str] = ""
    address_kind: ClassVar[str] = ""
    # Whether quiet hours hold this channel's deliveries (a task for staff may wait for nobody).
    quiet_hours: ClassVar[bool] = True
    # Whether a send counts against the customer's frequency caps (and is held by them): a
    # post in the customer's moments feed is not a message in their chat.
    capped: ClassVar[bool] = True
    # One message per staff member for all their customers (a moments post), not per customer:
    # rendered without customer values, with the staff member's own tracked link.
    per_staff: ClassVar[bool] = False

    def send(self, messages: Sequence[Message]) -> list[Result]:
        raise NotImplementedError

    def poll(self, external_ids: Sequence[str]) -> dict[str, Result]:
        """Final results for accepted sends, by external id; ids still open are left out."""
        return {}


_REGISTRY: dict[str, type[ChannelAdapter]] = {}


def register(adapter: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Class decorator: make an adapter available under its name (a later one replaces it)."""
    _REGISTRY[adapter.name] = adapter
    return adapter


def adapter_for(name: str) -> ChannelAdapter:
    """A fresh adapter for the channel; raises KeyError for a channel nobody registered."""
    _load_builtin()
    return _REGISTRY[name]()


def registered() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def uncapped() -> list[str]:
    """The channels whose sends neither count against frequency caps nor are held by them."""
    return [name for name in registered() if not adapter_for(name).capped]


def _load_builtin() -> None:
    # Imported late: the built-in adapters register themselves on import.
    from siyu.channels import email, sms, staff_task, webhook  # noqa: F401
