"""Event ingestion endpoints (scope: ingest). Thin: validation in schemas, rules in services."""

import gc
import threading
from contextlib import ContextDecorator

from django.http import HttpResponse
from ninja import Router, Status
from ninja.decorators import decorate_view
from pydantic_core import to_json

from siyu.api import scoped
from siyu.events.schemas import (
    BatchIn,
    BatchOut,
    ErrorOut,
    EventAccepted,
    EventIn,
    Item,
    batch_items,
)
from siyu.events.services import ACCEPTED, DUPLICATE, INVALID, events_ingest, events_validate

router = Router(tags=["events"], auth=scoped("ingest"))


class _CollectorPaused(ContextDecorator):
    """Python's cyclic garbage collector paused while a batch is handled.

    A batch of 1,000 events makes ~25,000 short-lived containers (parsed JSON, models,
    results) that reference counting frees when the request ends. With the collector on,
    they trigger collections mid-request that walk them, move the survivors to the oldest
    generation, and every few batches force a full collection over the whole Django heap:
    about a quarter of the request's CPU time (benchmarks/ingest.py). Threads share one
    count, so the collector resumes when the last batch in the process ends.
    """

    lock = threading.Lock()
    running = 0
    resume = False

    def __enter__(self):
        with self.lock:
            if _CollectorPaused.running == 0:
                _CollectorPaused.resume = gc.isenabled()
                gc.disable()
            _CollectorPaused.running += 1
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            _CollectorPaused.running -= 1
            if _CollectorPaused.running == 0 and _CollectorPaused.resume:
                gc.enable()


@router.post("", response={202: EventAccepted, 422: ErrorOut}, summary="Ingest one event")
def event_create(request, payload: EventIn):
    (result,) = events_ingest({0: Item.of(payload)})
    if result.status == INVALID:
        return Status(422, {"detail": result.errors[0]["reason"], "errors": result.errors})
    return Status(202, {"status": result.status})


# The body is read by the operation itself (schemas.batch_items), so the spec is given here.
BATCH_BODY = {
    "requestBody": {
        "content": {"application/json": {"schema": BatchIn.model_json_schema()}},
        "required": True,
    }
}


@router.post(
    "/batch",
    response={200: BatchOut},
    summary="Ingest up to 1,000 events",
    openapi_extra=BATCH_BODY,
)
@decorate_view(_CollectorPaused())  # around parsing and rendering too
def event_batch(request):
    """Each item has the shape of POST /events and is judged on its own: the answer lists,
    per index, accepted, duplicate or invalid with the fields and reasons."""
    valid, invalid = events_validate(batch_items(request.body))
    results = sorted([*invalid, *events_ingest(valid)], key=lambda r: r.index)
    counts = {s: sum(r.status == s for r in results) for s in (ACCEPTED, DUPLICATE, INVALID)}
    # Written by pydantic-core: BatchOut's validation and Django's JSON encoder cost ~10 ms
    # for a 1,000-item answer of plain values.
    body = to_json({**counts, "results": [r.__dict__ for r in results]})
    return HttpResponse(body, content_type="application/json; charset=utf-8")
