"""The catalogue of event types a subscription may receive, and the data each one carries.

Payloads name records by id and carry their public fields only: a phone number is sent masked
(138****1234), as a staff member without the reveal right sees it (docs/webhooks.md).
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from siyu.core.masking import mask_phone

ALL = "*"
CUSTOMER_CREATED = "customer.created"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_UPDATED = "customer.updated"
ORDER_PAID = "order.paid"
ORDER_REFUNDED = "order.refunded"
TAG_ADDED = "tag.added"
TAG_REMOVED = "tag.removed"
IMPORT_COMPLETED = "import.completed"
# Sent only by the console's "send test ping", to one subscription, whatever its types.
PING = "ping"

CATALOGUE = {
    CUSTOMER_CREATED: _("A customer was created"),
    CUSTOMER_UPDATED: _("A customer got new attributes or identifiers"),
    CUSTOMER_MERGED: _("Customers were merged into one"),
    ORDER_PAID: _("An order was paid"),
    ORDER_REFUNDED: _("An order was refunded (in part or in full)"),
    TAG_ADDED: _("A tag was put on customers"),
    TAG_REMOVED: _("A tag was taken off customers"),
    IMPORT_COMPLETED: _("An import finished"),
}
# A tag event names at most this many customers; a larger change sends several events.
TAG_EVENT_CUSTOMERS = 1000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


def customer_data(customer) -> dict:
    return {
        "customer": {
            "id": customer.pk,
            "name": customer.name,
            "gender": customer.gender,
            "province": customer.province,
            "city": customer.city,
            "phone_masked": mask_phone(customer.phone) if customer.phone else "",
            "first_seen_at": _iso(customer.first_seen_at),
            "first_channel_id": customer.first_channel_id,
        }
    }


def merge_data(*, survivor_id: int, absorbed_ids: Sequence[int], reason: str) -> dict:
    return {"survivor_id": survivor_id, "absorbed_ids": list(absorbed_ids), "reason": reason}


def order_data(order) -> dict:
    return {
        "order": {
            "id": order.pk,
            "channel_id": order.channel_id,
            "external_id": order.external_id,
            "customer_id": order.customer_id,
            "status": order.status,
            "amount": _money(order.amount),
            "refund_amount": _money(order.refund_amount),
            "currency": "CNY",
            "placed_at": _iso(order.placed_at),
            "paid_at": _iso(order.paid_at),
        }
    }


def tag_data(
    pairs: Iterable[tuple[int, int]], names: Mapping[int, str], source: str
) -> Iterator[dict]:
    """Per tag, one data item per TAG_EVENT_CUSTOMERS of the (customer id, tag id) pairs."""
    by_tag: dict[int, list[int]] = defaultdict(list)
    for customer_id, tag_id in pairs:
        by_tag[tag_id].append(customer_id)
    for tag_id, customer_ids in sorted(by_tag.items()):
        ids = sorted(customer_ids)
        for start in range(0, len(ids), TAG_EVENT_CUSTOMERS):
            yield {
                "tag": {"id": tag_id, "name": names.get(tag_id, "")},
                "source": source,
                "customer_ids": ids[start : start + TAG_EVENT_CUSTOMERS],
            }


def import_data(job) -> dict:
    return {
        "import": {
            "id": job.pk,
            "kind": job.kind,
            "file_name": job.original_name,
            "channel_id": job.channel_id,
            "state": job.state,
            "counts": job.counts,
            "finished_at": _iso(job.finished_at),
        }
    }
