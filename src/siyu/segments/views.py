"""Console pages for segments (the builder, saved segments, snapshots, exports) and for the
layers computed over the customer base (RFM grid, lifecycle funnel, super users, CLV model)."""

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import ADMINS, LEADS, role_required
from siyu.org.selectors import viewer_for
from siyu.segments.layers import last_recomputes, lifecycle_funnel, rfm_grid, super_user_facts
from siyu.segments.tasks import rfm_recompute_task, stages_recompute_task

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


# kind → (task, the page to go back to)
RECOMPUTE = {
    "rfm": (rfm_recompute_task, "segments:rfm"),
    "stages": (stages_recompute_task, "segments:lifecycle"),
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
