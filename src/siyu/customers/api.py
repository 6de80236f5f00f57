"""Customer endpoints: read (scope read) and upsert through OneID (scope ingest or admin)."""

from django.db.models import Q
from ninja import Query, Router
from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu.api import scoped
from siyu.core.errors import DomainError
from siyu.core.masking import mask_phone
from siyu.core.models import ApiKey
from siyu.core.pagination import keyset_page
from siyu.customers.identifiers import normalize_phone
from siyu.customers.models import Customer, Identity
from siyu.customers.schemas import CustomerIn, CustomerOut, CustomerPage, CustomerUpserted
from siyu.customers.selectors import CustomerFilters, customer_get, customer_search
from siyu.customers.services import customer_resolve
from siyu.events.schemas import CONTROL
from siyu.org.models import Staff
from siyu.org.selectors import NOBODY, Viewer

router = Router(tags=["customers"])


def key_viewer(key: ApiKey) -> Viewer:
    """What a key reads: as its staff member does in the console (nothing once they have
    left), or every customer for a key tied to nobody. Phones in full only with the admin
    scope, and for a staff member's key only if they see them in full in the console."""
    name = f"API key {key.name}"
    full_pii = "admin" in key.scopes
    staff = key.staff
    if staff is None:
        return Viewer(None, None, Staff.Role.ADMIN, None, full_pii, name)
    if staff.status != Staff.Status.ACTIVE:
        return NOBODY
    return Viewer(
        staff.user_id, staff.pk, staff.role, staff.store_id, full_pii and staff.sees_full_pii, name
    )


def customer_out(customer: Customer, viewer: Viewer, merged_from: int | None = None) -> dict:
    phone = customer.phone
    if phone and not viewer.sees_full_pii:
        phone = mask_phone(phone)
    return {
        "id": customer.pk,
        "merged_from": merged_from,
        "name": customer.name,
        "gender": customer.gender,
        "birthday": customer.birthday,
        "province": customer.province,
        "city": customer.city,
        "phone": phone,
        "stage": customer.stage,
        "first_seen_at": customer.first_seen_at,
    }


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=100, description="name, pinyin, phone or last 4, identity")
    phone: str | None = Field(None, max_length=40, description="a full phone number")
    limit: int = Field(50, ge=1, le=200)
    cursor: int | None = Field(None, ge=1, le=2**63 - 1, description="next_cursor of a page")

    @field_validator("q", "phone")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value and CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value


@router.get("/{customer_id}", response=CustomerOut, auth=scoped("read"), summary="One customer")
def customer_detail(request, customer_id: int):
    """A merged-away id answers with the surviving customer; `merged_from` names the asked id."""
    viewer = key_viewer(request.auth)
    customer = customer_get(viewer, customer_id)
    return customer_out(customer, viewer, customer_id if customer.pk != customer_id else None)


@router.get("", response=CustomerPage, auth=scoped("read"), summary="Search customers")
def customer_list(request, filters: Query[ListQuery]):
    """Newest first, keyset-paged: follow `next_cursor` until it is null."""
    viewer = key_viewer(request.auth)
    qs = customer_search(viewer, CustomerFilters(q=filters.q))
    if filters.phone is not None:
        try:
            phone = normalize_phone(filters.phone)
        except DomainError as exc:
            raise DomainError(exc.message, field="phone") from None
        qs = qs.filter(
            Q(
                pk__in=Identity.objects.filter(kind=Identity.Kind.PHONE, value=phone).values(
                    "customer_id"
                )
            )
        )
    page = keyset_page(qs, after=filters.cursor, before=None, size=filters.limit)
    return {
        "items": [customer_out(c, viewer) for c in page.items],
        "next_cursor": page.next_cursor,
    }


@router.post(
    "", response=CustomerUpserted, auth=scoped("ingest", "admin"), summary="Upsert a customer"
)
def customer_upsert(request, payload: CustomerIn):
    """Find or create the customer the identifiers name (merging those they show to be one
    person); attributes fill only empty fields, as the import does."""
    result = customer_resolve(
        identifiers=payload.identifiers.identifiers(),
        attributes=payload.attributes(),
        reason="REST API",
    )
    status = "created" if result.created else ("merged" if result.merged_ids else "matched")
    return {"id": result.customer.pk, "status": status, "merged_ids": result.merged_ids}
