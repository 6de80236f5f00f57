"""Writes to the customer pool: resolution (OneID), merges, identity reveals."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.identifiers import Identifier, normalize_identifier, pinyin_of
from siyu.customers.merge import customer_owned_models
from siyu.customers.models import Channel, Customer, Identity, MergeRecord
from siyu.webhooks.services import (
    webhook_customer_updated,
    webhook_customers_created,
    webhook_customers_merged,
)

ATTRIBUTES = ("name", "gender", "birthday", "province", "city")
GENDERS = {"m": "m", "male": "m", "男": "m", "f": "f", "female": "f", "女": "f"}
RESOLVE_ATTEMPTS = 3


@dataclass
class ResolveResult:
    customer: Customer
    created: bool = False
    merged_ids: list[int] = field(default_factory=list)
    attached: list[Identifier] = field(default_factory=list)


def clean_identifiers(raw: Iterable[Identifier | Mapping | tuple]) -> list[Identifier]:
    """Normalise and de-duplicate; the first invalid identifier raises DomainError."""
    seen: dict[tuple, Identifier] = {}
    for item in raw:
        if isinstance(item, Identifier):
            kind, value, namespace = item.kind, item.value, item.namespace
        elif isinstance(item, Mapping):
            kind, value, namespace = item.get("kind"), item.get("value"), item.get("namespace", "")
        else:
            kind, value, *rest = item
            namespace = rest[0] if rest else ""
        ident = normalize_identifier(str(kind), value, namespace)
        seen.setdefault(ident.key(), ident)
    return list(seen.values())


def clean_attributes(attributes: Mapping | None) -> dict:
    cleaned: dict = {}
    for key, value in (attributes or {}).items():
        if key not in ATTRIBUTES:
            raise DomainError(f"unknown customer attribute {key!r}", field=key)
        if value in (None, ""):
            continue
        if key == "gender":
            gender = GENDERS.get(str(value).strip().lower())
            if gender is None:
                raise DomainError(f"gender {value!r} is not one of m/f/男/女", field="gender")
            value = gender
        elif key == "birthday":
            if isinstance(value, datetime):
                value = value.date()
            elif not isinstance(value, date):
                try:
                    value = date.fromisoformat(str(value).strip())
                except ValueError as exc:
                    raise DomainError(
                        f"birthday {value!r} is not a date (YYYY-MM-DD)", field="birthday"
                    ) from exc
        else:
            value = str(value).strip()
            limit = Customer._meta.get_field(key).max_length
            if len(value) > limit:
                raise DomainError(f"{key} is longer than {limit} characters", field=key)
        cleaned[key] = value
    return cleaned


def customer_resolve(
    *,
    identifiers: Iterable[Identifier | Mapping | tuple],
    attributes: Mapping | None = None,
    channel: Channel | None = None,
    seen_at: datetime | None = None,
    reason: str = "",
) -> ResolveResult:
    """Find or create the one customer that the identifiers point to, merging if several do.

    Raises DomainError when an identifier or attribute is invalid or none is given.
    """
    idents = clean_identifiers(identifiers)
    if not idents:
        raise DomainError("at least one identifier is needed to resolve a customer")
    attrs = clean_attributes(attributes)
    seen_at = seen_at or timezone.now()
    for attempt in range(RESOLVE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _resolve(idents, attrs, channel, seen_at, reason)
        except IntegrityError:
            # Another process created one of these identities meanwhile: match it next time.
            if attempt == RESOLVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _resolve(
    idents: list[Identifier],
    attrs: dict,
    channel: Channel | None,
    seen_at: datetime,
    reason: str,
) -> ResolveResult:
    match = Q()
    for ident in idents:
        match |= Q(kind=ident.kind, namespace=ident.namespace, value=ident.value)
    customer_ids = sorted(set(Identity.objects.filter(match).values_list("customer_id", flat=True)))
    customers = list(
        Customer.objects.select_for_update()
        .filter(pk__in=customer_ids)
        .order_by("first_seen_at", "pk")
    )
    customers = _follow_tombstones(customers)

    result: ResolveResult
    if not customers:
        customer = Customer(first_channel=channel, first_seen_at=seen_at)
        _fill(customer, attrs, overwrite=True)
        customer.save()
        result = ResolveResult(customer=customer, created=True)
    else:
        survivor, *others = customers
        result = ResolveResult(customer=survivor)
        if others:
            customers_merge(survivor=survivor, absorbed=others, reason=reason or "resolution")
            result.merged_ids = [c.pk for c in others]
        if seen_at < survivor.first_seen_at:
            survivor.first_seen_at = seen_at
            survivor.first_channel = channel or survivor.first_channel
        before = [getattr(survivor, key) for key in ATTRIBUTES]
        _fill(survivor, attrs, overwrite=False)
        survivor.save()

    known = set(Identity.objects.filter(match).values_list("kind", "namespace", "value"))
    new = [i for i in idents if i.key() not in known]
    Identity.objects.bulk_create(
        Identity(
            customer=result.customer,
            kind=i.kind,
            namespace=i.namespace,
            value=i.value,
            channel=channel,
        )
        for i in new
    )
    result.attached = new
    _refresh_phone(result.customer)
    if result.created:
        webhook_customers_created(customers=[result.customer])
    else:
        changed = [k for k, v in zip(ATTRIBUTES, before, strict=True) if getattr(survivor, k) != v]
        if new:
            changed.append("identities")
        webhook_customer_updated(customer=survivor, changed=changed)
    return result


def _follow_tombstones(customers: list[Customer]) -> list[Customer]:
    """Identities always point at live customers, but an old reference may not: follow it."""
    live: dict[int, Customer] = {}
    for customer in customers:
        hops = 0
        while customer.merged_into_id is not None and hops < 32:
            customer = Customer.objects.select_for_update().get(pk=customer.merged_into_id)
            hops += 1
        live.setdefault(customer.pk, customer)
    return sorted(live.values(), key=lambda c: (c.first_seen_at, c.pk))


def _fill(customer: Customer, attrs: dict, *, overwrite: bool) -> None:
    for key, value in attrs.items():
        if overwrite or not getattr(customer, key):
            setattr(customer, key, value)
    customer.name_pinyin, customer.name_initials = pinyin_of(customer.name)


def _refresh_phone(customer: Customer) -> None:
    """Keep the denormalised primary phone pointing at one of the customer's phone identities."""
    phones = list(
        Identity.objects.filter(customer=customer, kind=Identity.Kind.PHONE)
        .order_by("id")
        .values_list("value", flat=True)
    )
    phone = customer.phone if customer.phone in phones else (phones[0] if phones else "")
    if phone != customer.phone:
        customer.phone = phone
        customer.phone_tail = phone[-4:]
        customer.save(update_fields=["phone", "phone_tail", "updated_at"])


@transaction.atomic
def customers_merge(
    *,
    survivor: Customer,
    absorbed: Sequence[Customer],
    reason: str = "",
    actor=None,
) -> list[MergeRecord]:
    """Absorb customers into `survivor`: move every customer-owned row, leave tombstones.

    Raises DomainError when asked to merge a customer into itself or a tombstone.
    """
    absorbed = [c for c in absorbed if c.pk != survivor.pk]
    if not absorbed:
        return []
    if survivor.merged_into_id or any(c.merged_into_id for c in absorbed):
        raise DomainError("only live customers can be merged")
    absorbed_ids = [c.pk for c in absorbed]
    owned = customer_owned_models()
    for entry in owned:
        if entry.on_conflict:
            entry.on_conflict(survivor.pk, absorbed_ids)

    records = []
    for customer in absorbed:
        moved = {}
        for entry in owned:
            count = entry.model._default_manager.filter(**{entry.field: customer.pk}).update(
                **{entry.field: survivor.pk}
            )
            if count:
                moved[entry.model._meta.label_lower] = count
        if customer.first_seen_at < survivor.first_seen_at:
            survivor.first_seen_at = customer.first_seen_at
            survivor.first_channel_id = customer.first_channel_id
        for key in (*ATTRIBUTES, "owner_id", "store_id", "consent_sms", "consent_email"):
            if getattr(survivor, key) in (None, "") and getattr(customer, key) not in (None, ""):
                setattr(survivor, key, getattr(customer, key))
        records.append(
            MergeRecord(
                survivor=survivor,
                absorbed=customer,
                reason=reason[:200],
                moved=moved,
                absorbed_snapshot=_snapshot(customer),
            )
        )
    survivor.name_pinyin, survivor.name_initials = pinyin_of(survivor.name)
    survivor.save()
    # Flatten: tombstones of the absorbed now point straight at the survivor.
    Customer.objects.filter(merged_into_id__in=absorbed_ids).update(merged_into=survivor)
    Customer.objects.filter(pk__in=absorbed_ids).update(
        merged_into=survivor, updated_at=timezone.now()
    )
    for customer in absorbed:
        customer.merged_into = survivor
    MergeRecord.objects.bulk_create(records)
    _refresh_phone(survivor)
    webhook_customers_merged(survivor_id=survivor.pk, absorbed_ids=absorbed_ids, reason=reason)
    audit_record(
        actor=actor,
        action=AuditLog.Action.MERGE,
        target=survivor,
        summary=f"merged {', '.join(map(str, absorbed_ids))} into {survivor.pk}",
        detail={"absorbed": absorbed_ids, "reason": reason},
    )
    return records


def _snapshot(customer: Customer) -> dict:
    return {
        "name": customer.name,
        "gender": customer.gender,
        "birthday": customer.birthday.isoformat() if customer.birthday else None,
        "province": customer.province,
        "city": customer.city,
        "first_seen_at": customer.first_seen_at.isoformat(),
        "first_channel_id": customer.first_channel_id,
        "owner_id": customer.owner_id,
        "stage": customer.stage,
    }


def identity_reveal(*, viewer_user, identity: Identity, ip: str | None = None) -> str:
    """Return the full value of one identity and write the audit record that says who saw it."""
    audit_record(
        actor=viewer_user,
        action=AuditLog.Action.REVEAL,
        target=identity.customer,
        summary=f"revealed {identity.kind}",
        detail={"identity_id": identity.pk, "kind": identity.kind},
        ip=ip,
    )
    return identity.value
