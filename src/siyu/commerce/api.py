"""Order upsert over the REST API (scope ingest or admin), keyed by (channel, external_id)."""

from decimal import Decimal

from ninja import Router
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from siyu.api import scoped
from siyu.commerce.models import Order
from siyu.commerce.services import order_status, order_upsert
from siyu.events.schemas import CONTROL, CustomerRef

router = Router(tags=["orders"], auth=scoped("ingest", "admin"))


class _Printable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _printable(cls, value):
        if isinstance(value, str) and CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value


class ItemIn(_Printable):
    line_id: str = Field("", max_length=64)
    product_ref: str = Field("", max_length=64)
    title: str = Field("", max_length=200)
    sku: str = Field("", max_length=100)
    quantity: int = Field(1, ge=1, le=1_000_000)
    unit_price: Decimal | None = Field(
        None, ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False
    )


class OrderIn(_Printable):
    channel: str = Field(..., min_length=1, max_length=40, description="a source channel code")
    external_id: str = Field(..., min_length=1, max_length=64, description="the platform's id")
    customer: CustomerRef
    status: Order.Status | None = Field(None, description="default: read from amounts and paid_at")
    amount: Decimal = Field(..., ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)
    refund_amount: Decimal = Field(
        Decimal(0), ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False
    )
    placed_at: AwareDatetime | None = None
    paid_at: AwareDatetime | None = None
    items: list[ItemIn] | None = Field(None, max_length=200, description="replace the lines")

    @field_validator("refund_amount")
    @classmethod
    def _within_amount(cls, value: Decimal, info) -> Decimal:
        amount = info.data.get("amount")
        if amount is not None and value > amount:
            raise ValueError("is larger than amount")
        return value


class OrderUpserted(BaseModel):
    id: int
    created: bool = Field(..., description="false when an existing order was updated")
    customer_id: int
    status: str


@router.post("", response=OrderUpserted, summary="Create or update an order")
def order_put(request, payload: OrderIn):
    """A repeated post of the same (channel, external_id) updates the order, e.g. a refund."""
    values = {
        "status": order_status(
            payload.status, payload.amount, payload.refund_amount, payload.paid_at
        ),
        "amount": payload.amount,
        "refund_amount": payload.refund_amount,
        "placed_at": payload.placed_at,
        "paid_at": payload.paid_at,
    }
    items = None if payload.items is None else [i.model_dump() for i in payload.items]
    result = order_upsert(
        channel_code=payload.channel,
        external_id=payload.external_id,
        identifiers=payload.customer.identifiers(),
        values=values,
        items=items,
    )
    order = result.order
    return {
        "id": order.pk,
        "created": result.created,
        "customer_id": order.customer_id,
        "status": order.status,
    }
