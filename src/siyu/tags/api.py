"""Tagging customers over the REST API (scope ingest or admin), through tags_assign/tags_remove.

Rule tags are refused (422, field "tag"): their customers come only from their rule.
"""

from django.shortcuts import get_object_or_404
from ninja import Router
from pydantic import BaseModel, ConfigDict, Field

from siyu.api import scoped
from siyu.customers.api import key_viewer
from siyu.customers.selectors import customer_get
from siyu.tags.models import Source, Tag
from siyu.tags.services import tags_assign, tags_remove

router = Router(tags=["tags"], auth=scoped("ingest", "admin"))

# A key feeding tags from another system in real time; imports are files brought in by hand.
SOURCE = Source.API


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag_id: int = Field(..., ge=1)


class TagChanged(BaseModel):
    customer_id: int = Field(..., description="the survivor if the id was merged away")
    tag_id: int
    changed: bool = Field(..., description="false if the customer already had (or lacked) it")


@router.post("/{customer_id}/tags", response=TagChanged, summary="Tag a customer")
def customer_tag_add(request, customer_id: int, payload: TagIn):
    customer = customer_get(key_viewer(request.auth), customer_id)
    tag = get_object_or_404(Tag, pk=payload.tag_id)
    added = tags_assign(customer_ids=[customer.pk], tag=tag, source=SOURCE)
    return {"customer_id": customer.pk, "tag_id": tag.pk, "changed": added == 1}


@router.delete("/{customer_id}/tags/{tag_id}", response=TagChanged, summary="Untag a customer")
def customer_tag_remove(request, customer_id: int, tag_id: int):
    customer = customer_get(key_viewer(request.auth), customer_id)
    tag = get_object_or_404(Tag, pk=tag_id)
    removed = tags_remove(customer_ids=[customer.pk], tag=tag, source=SOURCE)
    return {"customer_id": customer.pk, "tag_id": tag.pk, "changed": removed == 1}
