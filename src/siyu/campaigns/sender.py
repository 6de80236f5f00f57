"""Sending: claim due deliveries in batches, decide do-not-disturb, render, hand to the adapter.

Crash safety: a claim marks rows "sending" with the time and commits before anything leaves;
rows left "sending" past the lease (SIYU_CAMPAIGN_LEASE_SECONDS) belonged to a worker that
died and are claimed again. A retried row keeps its idempotency key, so a peer that dedupes
by it (the SMS gateway, a webhook sink, WeCom) still receives each delivery once.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from siyu.campaigns.dnd import CONSENT_FIELD, consent_reason, quiet_until
from siyu.campaigns.models import Campaign, Delivery, Step, Variant
from siyu.campaigns.ratelimit import seconds_until_token, tokens_return, tokens_take
from siyu.campaigns.selectors import cap_counter_for, channel_addresses
from siyu.channels.base import ChannelAdapter, Message, Outcome, Result, adapter_for, registered
from siyu.content.formatting import render_script
from siyu.content.models import Material
from siyu.content.services import (
    public_link_url,
    tracked_link_for,
    tracked_links_for_recipients,
)
from siyu.core.bulk import bulk_update
from siyu.org.models import Staff

logger = logging.getLogger(__name__)
Status = Delivery.Status
Reason = Delivery.Reason
RESULT_COLUMNS = [
    "status",
    "reason",
    "planned_for",
    "sent_at",
    "external_id",
    "error",
    "rendered_text",
]


@dataclass
class SendSummary:
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    retrying: int = 0
    suppressed: int = 0
    reclaimed: int = 0
    postponed: int = 0

    def add(self, other: "SendSummary") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _quiet_channels() -> list[str]:
    return [name for name in registered() if adapter_for(name).quiet_hours]


@transaction.atomic
def deliveries_reclaim_stuck(*, now: datetime | None = None) -> int:
    """Deliveries a dead worker left "sending": back to pending, or failed after the last try."""
    now = now or timezone.now()
    stuck = Delivery.objects.filter(
        status=Status.SENDING,
        claimed_at__lt=now - timedelta(seconds=settings.SIYU_CAMPAIGN_LEASE_SECONDS),
    )
    stuck.filter(attempts__gte=settings.SIYU_CAMPAIGN_MAX_ATTEMPTS).update(
        status=Status.FAILED, error="sending was interrupted on the last attempt"
    )
    return stuck.update(status=Status.PENDING)


@transaction.atomic
def deliveries_postpone_quiet(*, now: datetime | None = None) -> int:
    """During quiet hours, due marketing deliveries wait for the morning: planned_for moves to
    the end of the quiet window, and `postponed` says why. Nothing is dropped."""
    now = now or timezone.now()
    until = quiet_until(now)
    if until is None:
        return 0
    return Delivery.objects.filter(
        status=Status.PENDING,
        planned_for__lte=now,
        channel__in=_quiet_channels(),
        campaign__marketing=True,
    ).update(planned_for=until, postponed="quiet_hours")


@transaction.atomic
def deliveries_claim(*, channel: str, limit: int, now: datetime, quiet: bool = False) -> list[int]:
    """Mark up to `limit` due deliveries of running campaigns "sending"; returns their ids.

    PostgreSQL skips rows another worker holds (SKIP LOCKED), so workers claim disjoint
    batches; SQLite serialises writers, which gives the same.
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    campaigns = connection.ops.quote_name(Campaign._meta.db_table)
    only_transactional = " AND c.marketing = %s" if quiet else ""
    lock = " FOR UPDATE OF d SKIP LOCKED" if connection.vendor == "postgresql" else ""
    moment = connection.ops.adapt_datetimefield_value(now)
    params: list = [
        Status.SENDING,
        moment,
        Status.PENDING,
        channel,
        moment,
        Campaign.Status.RUNNING,
    ]
    if quiet:
        params.append(False)
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1 "
            f"WHERE id IN (SELECT d.id FROM {table} d JOIN {campaigns} c "
            "ON c.id = d.campaign_id WHERE d.status = %s AND d.channel = %s "
            f"AND d.planned_for <= %s AND c.status = %s{only_transactional} "
            f"ORDER BY d.planned_for LIMIT %s{lock}) RETURNING id",
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def _refusal(row: Delivery, address: str, adapter: ChannelAdapter, caps) -> str:
    customer = row.customer
    if customer.merged_into_id is not None:
        return Reason.MERGED
    field = CONSENT_FIELD.get(row.channel)
    if field and (reason := consent_reason(row.channel, getattr(customer, field))):
        return reason
    if adapter.address_kind and not address:
        return Reason.NO_ADDRESS
    if row.campaign.marketing and adapter.capped:
        return caps.refusal(row.customer_id, row.channel)
    return ""


def _extra(row: Delivery) -> dict:
    extra = {
        "campaign_id": row.campaign_id,
        "step_id": row.step_id,
        "occurrence": row.occurrence,
        "variant": row.variant.name,
    }
    if row.step.webhook_id:
        extra.update(url=row.step.webhook.url, secret=row.step.webhook.secret)
    return extra


def _settle(row: Delivery, result: Result, now: datetime, summary: SendSummary) -> None:
    row.error = result.error
    if result.outcome == Outcome.SENT:
        row.status, row.sent_at, row.external_id = Status.SENT, now, result.external_id[:100]
        summary.sent += 1
    elif result.outcome == Outcome.ACCEPTED:
        row.status, row.sent_at, row.external_id = Status.ACCEPTED, now, result.external_id[:100]
        summary.accepted += 1
    elif result.retryable and row.attempts < settings.SIYU_CAMPAIGN_MAX_ATTEMPTS:
        # Exponential backoff: 1, 2, 4, 8 … times the base delay.
        delay = settings.SIYU_CAMPAIGN_RETRY_SECONDS * 2 ** max(row.attempts - 1, 0)
        row.status, row.planned_for = Status.PENDING, now + timedelta(seconds=delay)
        summary.retrying += 1
    else:
        row.status = Status.FAILED
        summary.failed += 1


def _write(rows: Sequence[Delivery]) -> None:
    bulk_update(
        Delivery,
        RESULT_COLUMNS,
        [(row.pk, *(getattr(row, name) for name in RESULT_COLUMNS)) for row in rows],
    )


# What sending needs of each row: the delivery, the customer's consent, address and the names
# the formatter fills in. The wide customer row (RFM, pinyin …) is left in the database.
ROW_FIELDS = (
    *(f.attname for f in Delivery._meta.concrete_fields),
    "customer__name",
    "customer__city",
    "customer__phone",
    "customer__owner_id",
    "customer__store_id",
    "customer__merged_into_id",
    "customer__consent_sms",
    "customer__consent_email",
    "customer__store__name",
    "customer__owner__name",
    "customer__owner__nickname",
    "customer__owner__store_id",
    "customer__owner__store__name",
    "staff__name",
    "staff__nickname",
    "staff__store_id",
    "staff__store__name",
)


def _attach_shared(rows: Sequence[Delivery]) -> None:
    """Variants, steps and campaigns are few and shared by many rows: one query each."""
    variants = Variant.objects.select_related("script__material", "material").in_bulk(
        {row.variant_id for row in rows}
    )
    steps = Step.objects.select_related("webhook").in_bulk({row.step_id for row in rows})
    campaigns = Campaign.objects.in_bulk({row.campaign_id for row in rows})
    for row in rows:
        row.variant = variants[row.variant_id]
        row.step = steps[row.step_id]
        row.campaign = campaigns[row.campaign_id]


def _material(variant: Variant):
    return variant.material or (variant.script.material if variant.script_id else None)


def _material_links(rows: Sequence[Delivery], *, per_staff: bool) -> dict[int, str]:
    """Delivery id → the public address of the tracked link of its material for (staff,
    customer), for texts that share `{material.link}`: created in bulk, one set per material,
    so each open tells the sender who read what. A post for all of a staff member's customers
    (per_staff) shares the staff member's own link: who opens it is learnt from the visit."""
    wanted: dict[int, list[Delivery]] = {}
    for row in rows:
        material = _material(row.variant)
        texts = row.variant.text + row.variant.subject
        if material is not None and "{material.link}" in texts:
            wanted.setdefault(material.pk, []).append(row)
    urls: dict[int, str] = {}
    for group in wanted.values():
        material = _material(group[0].variant)
        pair = {row.pk: ((row.customer.owner_id or row.staff_id), row.customer_id) for row in group}
        if per_staff:
            links = _staff_links(material, set(pair.values()))
        else:
            links = tracked_links_for_recipients(material=material, recipients=pair.values())
        for delivery_id, key in pair.items():
            if key in links:
                urls[delivery_id] = public_link_url(links[key])
    return urls


def _staff_links(material: Material, pairs: set[tuple]) -> dict[tuple, object]:
    """Each staff member's own link of the material: one lookup per staff member of the batch
    (a few), not per customer."""
    if material.status != Material.Status.PUBLISHED:
        return {}
    staff_ids = {staff_id for staff_id, _ in pairs if staff_id is not None}
    mine = {pk: tracked_link_for(material=material, staff=Staff(pk=pk)) for pk in staff_ids}
    return {pair: mine[pair[0]] for pair in pairs if pair[0] in mine}


def deliveries_send_batch(
    *, adapter: ChannelAdapter, ids: Sequence[int], now: datetime
) -> SendSummary:
    """Decide, render and send claimed deliveries, then record every outcome in bulk."""
    summary = SendSummary()
    rows = list(
        Delivery.objects.filter(pk__in=ids, status=Status.SENDING)
        .select_related("customer__store", "customer__owner__store", "staff__store")
        .only(*ROW_FIELDS)
        .order_by("planned_for", "pk")
    )
    _attach_shared(rows)
    if not rows:
        return summary
    addresses = channel_addresses(adapter.address_kind, [row.customer for row in rows])
    caps = cap_counter_for({row.customer_id for row in rows}, now)
    sending: list[Delivery] = []
    for row in rows:
        reason = _refusal(row, addresses.get(row.customer_id, ""), adapter, caps)
        if reason:
            row.status, row.reason = Status.SUPPRESSED, reason
            summary.suppressed += 1
            continue
        if row.campaign.marketing and adapter.capped:
            caps.count(row.customer_id, row.channel)
        sending.append(row)
    links = _material_links(sending, per_staff=adapter.per_staff)
    messages: list[Message] = []
    for row in sending:
        staff = row.customer.owner or row.staff
        variant = row.variant
        material = _material(variant)
        link = links.get(row.pk)
        # A post for many customers is written without any one of them (store: the staff's).
        customer = None if adapter.per_staff else row.customer
        text = {"customer": customer, "staff": staff, "material": material}
        row.rendered_text = render_script(variant.text, material_link=link or "", **text)
        messages.append(
            Message(
                delivery_id=row.pk,
                idempotency_key=row.idempotency_key,
                customer_id=row.customer_id,
                address=addresses.get(row.customer_id, ""),
                body=row.rendered_text,
                subject=render_script(variant.subject, material_link=link or "", **text),
                staff_id=staff.pk if staff else None,
                extra=_extra(row),
            )
        )
    if messages:
        try:
            results = adapter.send(messages)
            if len(results) != len(messages):
                raise RuntimeError(f"{len(results)} results for {len(messages)} messages")
        except Exception as error:  # an adapter bug must not leave rows "sending" for good
            logger.exception("channel %s failed a batch", adapter.name)
            results = [Result.failed(f"{type(error).__name__}: {error}")] * len(messages)
        for row, result in zip(sending, results, strict=True):
            _settle(row, result, now, summary)
    _write(rows)
    return summary


def deliveries_send_due(
    *,
    now: datetime | None = None,
    channels: Sequence[str] | None = None,
    batch: int | None = None,
    budget_seconds: float = 0,
) -> SendSummary:
    """Send what is due, channel by channel, in batches, within each channel's rate.

    With a budget the sender waits for the rate limiter's tokens until the budget is spent;
    without one it stops at the first empty bucket. `now` fixes the clock (tests).
    """
    fixed = now
    clock = (lambda: fixed) if fixed is not None else timezone.now
    batch = batch or settings.SIYU_CAMPAIGN_BATCH
    deadline = time.monotonic() + budget_seconds
    summary = SendSummary()
    summary.reclaimed = deliveries_reclaim_stuck(now=clock())
    summary.postponed = deliveries_postpone_quiet(now=clock())
    for name in channels or registered():
        adapter = adapter_for(name)
        while True:
            moment = clock()
            quiet = adapter.quiet_hours and quiet_until(moment) is not None
            granted = tokens_take(channel=name, want=batch, now=moment)
            if granted == 0:
                if time.monotonic() + seconds_until_token(name) < deadline:
                    time.sleep(seconds_until_token(name))
                    continue
                break
            ids = deliveries_claim(channel=name, limit=granted, now=moment, quiet=quiet)
            tokens_return(channel=name, count=granted - len(ids))
            if not ids:
                break
            summary.add(deliveries_send_batch(adapter=adapter, ids=ids, now=moment))
    return summary


def deliveries_poll_accepted(*, now: datetime | None = None, limit: int = 1000) -> SendSummary:
    """Ask each channel for the outcome of accepted (asynchronous) sends and record it."""
    now = now or timezone.now()
    summary = SendSummary()
    for name in registered():
        rows = list(
            Delivery.objects.filter(status=Status.ACCEPTED, channel=name).order_by("sent_at")[
                :limit
            ]
        )
        if not rows:
            continue
        results = adapter_for(name).poll([row.external_id for row in rows])
        settled = []
        for row in rows:
            result = results.get(row.external_id)
            if result is None or result.outcome == Outcome.ACCEPTED:
                continue
            sent_at = row.sent_at
            row.attempts = settings.SIYU_CAMPAIGN_MAX_ATTEMPTS  # the platform decided: final
            _settle(row, result, now, summary)
            # A message the platform did not deliver does not count against the caps.
            row.sent_at = sent_at if row.status == Status.SENT else None
            settled.append(row)
        if settled:
            _write(settled)
    return summary
