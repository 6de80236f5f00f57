"""Reads of the customer pool. Every read starts from `customers_visible_to`: the one scope."""

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from siyu.core.errors import DomainError
from siyu.customers.identifiers import normalize_phone
from siyu.customers.models import Channel, Customer, Identity, MergeRecord, Relationship
from siyu.org.selectors import Viewer

MAX_QUERY_LENGTH = 100
MAX_IDENTITY_HITS = 100
PINYIN = re.compile(r"^[a-z]+$")
DIGITS = re.compile(r"^\+?\d+$")


def customers_visible_to(viewer: Viewer) -> QuerySet[Customer]:
    """Live customers the viewer may see: admins all, managers their store, staff their own."""
    qs = Customer.objects.live()
    if viewer.is_admin:
        return qs
    # `pk IN (…)` rather than EXISTS: PostgreSQL hashes the friendship set once instead of
    # probing it per customer (about 1.3× faster on a million customers).
    if viewer.is_manager and viewer.store_id:
        friends = Relationship.objects.filter(staff__store_id=viewer.store_id)
        return qs.filter(Q(store_id=viewer.store_id) | Q(pk__in=friends.values("customer_id")))
    if viewer.staff_id:
        friends = Relationship.objects.filter(staff_id=viewer.staff_id)
        return qs.filter(Q(owner_id=viewer.staff_id) | Q(pk__in=friends.values("customer_id")))
    return qs.none()


def customer_get(viewer: Viewer, pk) -> Customer:
    """The customer if the viewer may see it; a tombstone resolves to its survivor.

    Raises Http404 for unknown and out-of-scope ids alike, so existence does not leak.
    """
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404 from None
    target = Customer.objects.filter(pk=pk).values_list("merged_into_id", flat=True).first()
    if target is not None:
        pk = target
    customer = (
        customers_visible_to(viewer)
        .select_related("owner", "store", "first_channel", "clv")
        .filter(pk=pk)
        .first()
    )
    if customer is None:
        raise Http404
    return customer


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    store_id: int | None = None
    owner_id: int | None = None
    channel_id: int | None = None
    stage: str = ""
    rfm_r: int | None = None
    rfm_f: int | None = None
    rfm_group: str = ""
    is_super_user: bool | None = None
    segment: Q | None = None  # a saved segment's compiled definition (siyu.segments.dsl)


def customer_search(viewer: Viewer, filters: CustomerFilters) -> QuerySet[Customer]:
    """Scoped customers matching a free-text query and filters, newest first.

    The query matches a name prefix, pinyin or pinyin initials, a full phone or its last four
    digits, or any identity value. Raises DomainError for a query too long to be a search.
    """
    qs = customers_visible_to(viewer)
    if filters.store_id:
        qs = qs.filter(store_id=filters.store_id)
    if filters.owner_id:
        qs = qs.filter(owner_id=filters.owner_id)
    if filters.channel_id:
        qs = qs.filter(first_channel_id=filters.channel_id)
    if filters.stage:
        qs = qs.filter(stage=filters.stage)
    if filters.rfm_r:
        qs = qs.filter(rfm_r=filters.rfm_r)
    if filters.rfm_f:
        qs = qs.filter(rfm_f=filters.rfm_f)
    if filters.rfm_group:
        qs = qs.filter(rfm_group=filters.rfm_group)
    if filters.is_super_user is not None:
        qs = qs.filter(is_super_user=filters.is_super_user)
    if filters.segment is not None:
        qs = qs.filter(filters.segment)
    text = filters.q.strip()
    if text:
        if len(text) > MAX_QUERY_LENGTH:
            raise DomainError(
                f"search text is longer than {MAX_QUERY_LENGTH} characters", field="q"
            )
        qs = qs.filter(_text_match(text))
    return qs.select_related("owner", "store", "first_channel")


def _text_match(text: str) -> Q:
    lowered = text.lower().replace(" ", "")
    match = Q(name__startswith=text)
    if PINYIN.match(lowered):
        match |= Q(name_pinyin__startswith=lowered) | Q(name_initials__startswith=lowered)
    values = {text, lowered}
    if DIGITS.match(text):
        if len(text) == 4:
            match |= Q(phone_tail=text)
        with suppress(DomainError):
            values.add(normalize_phone(text))
    # Identity values are unique, so the hits are few: fetched first, they let the database
    # combine index scans instead of testing a subquery against every customer.
    hits = list(
        Identity.objects.filter(value__in=values).values_list("customer_id", flat=True)[
            :MAX_IDENTITY_HITS
        ]
    )
    if hits:
        match |= Q(pk__in=hits)
    return match


def customer_identity_get(customer: Customer, identity_id) -> Identity:
    """One identity of this customer; Http404 if it belongs to anyone else or does not exist."""
    identity = customer.identities.filter(pk=identity_id).first()
    if identity is None:
        raise Http404
    return identity


def channel_list() -> QuerySet[Channel]:
    """Every source channel, for filters; channels are not personal data, so not scoped."""
    return Channel.objects.order_by("name", "pk")


def customer_identities(customer: Customer) -> list[Identity]:
    return list(customer.identities.select_related("channel").order_by("kind", "id"))


def customer_relationships(customer: Customer) -> list[Relationship]:
    return list(
        customer.relationships.select_related("staff", "staff__store", "channel").order_by(
            "-added_at"
        )
    )


def customer_merges(customer: Customer) -> list[MergeRecord]:
    return list(customer.merges.order_by("-merged_at")[:50])


@dataclass(frozen=True)
class PoolStats:
    size: int
    new_today: int
    new_7d: int
    new_30d: int
    removed_today: int
    removed_7d: int
    removed_30d: int
    by_channel: list[dict]


def pool_stats(viewer: Viewer) -> PoolStats:
    """The home dashboard's figures, each one aggregate query over the viewer's scope."""
    now = timezone.localtime()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    d7, d30 = today - timedelta(days=6), today - timedelta(days=29)
    customers = customers_visible_to(viewer)
    counts = customers.aggregate(
        size=Count("pk"),
        new_today=Count("pk", filter=Q(first_seen_at__gte=today)),
        new_7d=Count("pk", filter=Q(first_seen_at__gte=d7)),
        new_30d=Count("pk", filter=Q(first_seen_at__gte=d30)),
    )
    removed = _removed_relationships(viewer).aggregate(
        today=Count("pk", filter=Q(removed_at__gte=today)),
        d7=Count("pk", filter=Q(removed_at__gte=d7)),
        d30=Count("pk", filter=Q(removed_at__gte=d30)),
    )
    names = dict(Channel.objects.values_list("id", "name"))
    by_channel = [
        {"channel": names.get(row["first_channel_id"], ""), "count": row["n"]}
        for row in customers.order_by()
        .values("first_channel_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
    ]
    return PoolStats(
        size=counts["size"],
        new_today=counts["new_today"],
        new_7d=counts["new_7d"],
        new_30d=counts["new_30d"],
        removed_today=removed["today"],
        removed_7d=removed["d7"],
        removed_30d=removed["d30"],
        by_channel=by_channel,
    )


def _removed_relationships(viewer: Viewer) -> QuerySet[Relationship]:
    qs = Relationship.objects.filter(
        removed_by=Relationship.RemovedBy.CUSTOMER, removed_at__isnull=False
    )
    if viewer.is_admin:
        return qs
    if viewer.is_manager and viewer.store_id:
        return qs.filter(staff__store_id=viewer.store_id)
    if viewer.staff_id:
        return qs.filter(staff_id=viewer.staff_id)
    return qs.none()
