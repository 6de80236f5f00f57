"""The shapes of customers on the REST API."""

from datetime import date, datetime

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict, field_validator

from siyu.events.schemas import CONTROL, CustomerRef


class CustomerIn(BaseModel):
    """Identifiers to resolve through OneID, and attributes that fill only empty fields."""

    model_config = ConfigDict(extra="forbid")

    identifiers: CustomerRef
    name: str | None = Field(None, max_length=100)
    gender: str | None = Field(None, max_length=10, description="m, f, 男 or 女")
    birthday: date | None = None
    province: str | None = Field(None, max_length=30)
    city: str | None = Field(None, max_length=30)

    @field_validator("name", "gender", "province", "city")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value and CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    def attributes(self) -> dict:
        return self.model_dump(exclude={"identifiers"}, exclude_none=True)


class CustomerUpserted(Schema):
    id: int
    status: str = Field(..., description="created, matched or merged")
    merged_ids: list[int] = Field(default_factory=list, description="customers absorbed now")


class CustomerOut(Schema):
    id: int
    merged_from: int | None = Field(
        None, description="the requested id when it was merged into this customer"
    )
    name: str
    gender: str
    birthday: date | None
    province: str
    city: str
    phone: str = Field(..., description="masked unless the key has the admin scope")
    stage: str
    first_seen_at: datetime


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: int | None = Field(None, description="pass as cursor for the next page")
