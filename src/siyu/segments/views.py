"""Console pages for segments (the builder, saved segments, snapshots, exports) and for the
layers computed over the customer base (RFM grid, lifecycle funnel, super users, CLV model)."""

import json

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import ADMINS, ANY_ROLE, LEADS, role_required
from siyu.console.htmx import for_htmx, is_htmx_partial
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError, form_add_error
from siyu.org.selectors import viewer_for
from siyu.segments.builder import builder_vocabulary
from siyu.segments.clv_data import clv_page
from siyu.segments.dsl import SegmentError, segment_count
from siyu.segments.forms import DefinitionForm, PageForm, SegmentForm, SnapshotForm
from siyu.segments.layers import last_recomputes, lifecycle_funnel, rfm_grid, super_user_facts
from siyu.segments.segment_services import (
    segment_create,
    segment_delete,
    segment_duplicate,
    segment_export,
    segment_snapshot_create,
    segment_update,
)
from siyu.segments.selectors import (
    segment_counts,
    segment_get,
    segment_list,
    segment_member_page,
    segment_sample,
    segment_snapshots,
)
from siyu.segments.tasks import clv_recompute_task, rfm_recompute_task, stages_recompute_task

# ---------------------------------------------------------------------------- layers
# Admins and managers; every figure is over the viewer's customers (siyu.segments.layers).


def _layer_page(request, template: str, tab: str, context: dict) -> TemplateResponse:
    context |= {"tab": tab, "recomputed": last_recomputes()}
    return TemplateResponse(request, template, context)


@role_required(LEADS)
def rfm_grid_view(request):
    grid = rfm_grid(viewer_for(request.user))
    chart = {
        "cells": [[c.f - 1, c.r - 1, c.customers, str(c.average)] for c in grid.cells],
        "members": reverse("customers:list"),
    }
    return _layer_page(request, "segments/rfm_grid.html", "rfm", {"grid": grid, "chart": chart})


@role_required(LEADS)
def lifecycle_view(request):
    funnel = lifecycle_funnel(viewer_for(request.user))
    members = reverse("customers:list")
    chart = {
        "stages": [
            {"name": s.label, "value": s.customers, "url": f"{members}?stage={s.stage}"}
            for s in funnel.stages
        ]
    }
    return _layer_page(
        request, "segments/lifecycle.html", "lifecycle", {"funnel": funnel, "chart": chart}
    )


@role_required(LEADS)
def super_users_view(request):
    facts = super_user_facts(viewer_for(request.user))
    chart = {"curve": [[round(x * 100, 2), round(y * 100, 2)] for x, y in facts.pareto.curve]}
    context = {"facts": facts, "chart": chart, "share": settings.SIYU_SUPER_USER_SHARE}
    return _layer_page(request, "segments/super_users.html", "super_users", context)


@role_required(LEADS)
def clv_view(request):
    """The lifetime value model: parameters, holdout check, the viewer's predictions."""
    page = clv_page(viewer_for(request.user))
    rows = page.fit.holdout.get("rows", []) if page.fit else []
    chart = {
        "holdout": {
            "labels": [
                f"{r['frequency']}+" if r["open_ended"] else str(r["frequency"]) for r in rows
            ],
            "predicted": [round(r["predicted"], 3) for r in rows],
            "actual": [round(r["actual"], 3) for r in rows],
        },
        "value": [[label, n] for label, n in page.value_buckets],
        "alive": [[label, n] for label, n in page.alive_buckets],
    }
    return _layer_page(request, "segments/clv.html", "clv", {"page": page, "chart": chart})


# kind → (task, the page to go back to)
RECOMPUTE = {
    "rfm": (rfm_recompute_task, "segments:rfm"),
    "stages": (stages_recompute_task, "segments:lifecycle"),
    "clv": (clv_recompute_task, "segments:clv"),
}


@role_required(ADMINS)
@require_POST
def layer_recompute(request, kind: str):
    """Queue a recomputation; the worker runs it (inline when Huey is immediate)."""
    if kind not in RECOMPUTE:
        raise Http404
    task, page = RECOMPUTE[kind]
    transaction.on_commit(task)
    messages.success(request, _("The recomputation was queued; reload the page in a minute."))
    return redirect(page)


# ---------------------------------------------------------------------------- saved segments
# Everyone may list, open, count and export (within their scope, masked per role); admins and
# managers save, duplicate, delete and freeze snapshots. Definitions are shared by everyone.


def _is_lead(request) -> bool:
    return viewer_for(request.user).role in LEADS


def _error(request, message: str) -> TemplateResponse:
    return TemplateResponse(request, "segments/error.html", {"error": message}, status=400)


@role_required(ANY_ROLE)
def segment_list_view(request):
    segments = list(segment_list())
    counts = segment_counts(segments, viewer_for(request.user))
    rows = [(segment, counts[segment.pk]) for segment in segments]
    return TemplateResponse(
        request, "segments/list.html", {"rows": rows, "can_edit": _is_lead(request)}
    )


@role_required(ANY_ROLE)
@for_htmx(partial="segments/_members.html")
def segment_detail(request, pk: int):
    """The segment, its members in the viewer's scope (keyset pages), snapshots and exports."""
    viewer = viewer_for(request.user)
    segment = segment_get(pk)
    form = PageForm(request.GET)
    cursor = form.cleaned_data if form.is_valid() else {}
    context = {"segment": segment, "can_edit": viewer.role in LEADS, "page": None, "error": ""}
    context["definition_json"] = json.dumps(segment.definition, ensure_ascii=False, indent=2)
    try:
        context["page"] = segment_member_page(
            segment,
            viewer,
            after=cursor.get("after"),
            before=cursor.get("before"),
            size=settings.SIYU_PAGE_SIZE,
        )
        if not is_htmx_partial(request):  # paging swaps the table only
            context["count"] = segment_count(segment.definition, viewer)
    except SegmentError as exc:
        context["error"] = exc.message
    if not is_htmx_partial(request):
        context["snapshots"] = segment_snapshots(segment)
    return TemplateResponse(request, "segments/detail.html", context)


def _builder(request, segment=None) -> TemplateResponse:
    """The builder page: GET shows it, POST saves (admins and managers; others get 404)."""
    viewer = viewer_for(request.user)
    status = 200
    if request.method == "POST":
        if viewer.role not in LEADS:
            raise Http404
        form = SegmentForm(request.POST)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                if segment is None:
                    segment = segment_create(**data, user=request.user)
                else:
                    segment_update(segment=segment, **data)
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("Segment saved."))
                return redirect("segments:detail", pk=segment.pk)
        definition = form["definition"].value() or ""
    else:
        # ?from=ID opens a saved definition in the builder to explore, without editing it.
        source = segment
        if source is None and request.GET.get("from", "").isdigit():
            source = segment_get(request.GET["from"])
        initial = {}
        if source is not None:
            initial["definition"] = json.dumps(source.definition, ensure_ascii=False)
        if segment is not None:
            initial |= {"name": segment.name, "description": segment.description}
        form = SegmentForm(initial=initial)
        definition = initial.get("definition", "")
    context = {
        "form": form,
        "segment": segment,
        "definition": definition,
        "vocabulary": builder_vocabulary(viewer),
        "can_save": viewer.role in LEADS,
    }
    return TemplateResponse(request, "segments/builder.html", context, status=status)


@role_required(ANY_ROLE)
def segment_new(request):
    return _builder(request)


@role_required(LEADS)
def segment_edit(request, pk: int):
    return _builder(request, segment_get(pk))


@role_required(ANY_ROLE)
@require_POST
def segment_preview(request):
    """The builder's live count and first members, in the viewer's scope; 400 with the JSON
    path of the bad part for an invalid definition."""
    viewer = viewer_for(request.user)
    form = DefinitionForm(request.POST)
    context = {"error": ""}
    if not form.is_valid():
        context["error"] = " ".join(form.errors["definition"])
    else:
        definition = form.cleaned_data["definition"]
        try:
            context["count"] = segment_count(definition, viewer)
            context["sample"] = segment_sample(definition, viewer)
        except SegmentError as exc:
            context["error"] = exc.message
    status = 400 if context["error"] else 200
    return TemplateResponse(request, "segments/_preview.html", context, status=status)


@role_required(LEADS)
@require_POST
def segment_duplicate_view(request, pk: int):
    try:
        copy = segment_duplicate(segment=segment_get(pk), user=request.user)
    except DomainError as exc:
        return _error(request, exc.message)
    messages.success(request, _("Segment duplicated; edit the copy below."))
    return redirect("segments:edit", pk=copy.pk)


@role_required(LEADS)
@require_POST
def segment_delete_view(request, pk: int):
    segment_delete(segment=segment_get(pk), user=request.user, ip=client_ip(request))
    messages.success(request, _("Segment deleted; its snapshots are kept."))
    return redirect("segments:list")


@role_required(LEADS)
@require_POST
def snapshot_create_view(request, pk: int):
    segment = segment_get(pk)
    form = SnapshotForm(request.POST)
    if not form.is_valid():
        return _error(request, " ".join(form.errors["name"]))
    try:
        snapshot = segment_snapshot_create(
            segment=segment, viewer=viewer_for(request.user), name=form.cleaned_data["name"]
        )
    except DomainError as exc:
        return _error(request, exc.message)
    messages.success(
        request,
        _("Snapshot “%(name)s” frozen with %(count)s members.")
        % {"name": snapshot.name, "count": snapshot.size},
    )
    return redirect("segments:detail", pk=segment.pk)


@role_required(ANY_ROLE)
@require_POST
def segment_export_view(request, pk: int, fmt: str):
    """Download the members in the viewer's scope; the service writes the audit record."""
    try:
        export = segment_export(
            segment=segment_get(pk),
            viewer=viewer_for(request.user),
            fmt=fmt,
            user=request.user,
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _error(request, exc.message)
    return FileResponse(
        export.file,
        as_attachment=True,
        filename=export.filename,
        content_type=export.content_type,
    )
