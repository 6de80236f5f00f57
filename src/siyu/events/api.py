"""Event ingestion endpoints (scope: ingest). Thin: validation in schemas, rules in services."""

from ninja import Router, Status

from siyu.api import scoped
from siyu.events.schemas import BatchIn, BatchOut, ErrorOut, EventAccepted, EventIn
from siyu.events.services import ACCEPTED, DUPLICATE, INVALID, events_ingest, events_validate

router = Router(tags=["events"], auth=scoped("ingest"))


@router.post("", response={202: EventAccepted, 422: ErrorOut}, summary="Ingest one event")
def event_create(request, payload: EventIn):
    (result,) = events_ingest({0: payload})
    if result.status == INVALID:
        return Status(422, {"detail": result.errors[0]["reason"], "errors": result.errors})
    return Status(202, {"status": result.status})


@router.post("/batch", response={200: BatchOut}, summary="Ingest up to 1,000 events")
def event_batch(request, payload: BatchIn):
    """Each item has the shape of POST /events and is judged on its own: the answer lists,
    per index, accepted, duplicate or invalid with the fields and reasons."""
    valid, invalid = events_validate(payload.events)
    results = sorted([*invalid, *events_ingest(valid)], key=lambda r: r.index)
    counts = {s: sum(r.status == s for r in results) for s in (ACCEPTED, DUPLICATE, INVALID)}
    return {**counts, "results": [r.__dict__ for r in results]}
