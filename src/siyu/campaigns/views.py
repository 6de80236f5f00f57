"""Console pages for campaigns: the list, a campaign's figures, pause / resume / cancel.

Read-only apart from the three actions; the builder comes later. Everyone sees the campaigns
in their scope (campaigns_visible_to) and may act on those.
"""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from siyu.campaigns.forms import PageForm
from siyu.campaigns.models import Campaign, Delivery, StaffTask
from siyu.campaigns.selectors import (
    campaign_figures,
    campaign_steps,
    campaigns_visible_to,
    staff_tasks_open,
)
from siyu.campaigns.services import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    staff_task_done,
)
from siyu.console.access import ANY_ROLE, role_required
from siyu.console.htmx import for_htmx
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError
from siyu.core.pagination import keyset_page
from siyu.org.models import Staff
from siyu.org.selectors import viewer_for

ACTIONS = {"pause": campaign_pause, "resume": campaign_resume, "cancel": campaign_cancel}


def _visible(request, pk: int) -> Campaign:
    campaign = campaigns_visible_to(viewer_for(request.user)).filter(pk=pk).first()
    if campaign is None:
        raise Http404
    return campaign


@role_required(ANY_ROLE)
@for_htmx(partial="campaigns/_rows.html")
def campaign_list_view(request):
    cursor = PageForm(request.GET)
    data = cursor.cleaned_data if cursor.is_valid() else {}
    page = keyset_page(
        campaigns_visible_to(viewer_for(request.user)),
        after=data.get("after"),
        before=data.get("before"),
        size=settings.SIYU_PAGE_SIZE,
    )
    return TemplateResponse(request, "campaigns/list.html", {"page": page})


@role_required(ANY_ROLE)
def campaign_detail_view(request, pk: int):
    campaign = _visible(request, pk)
    figures = campaign_figures(campaign)
    reasons = dict(Delivery.Reason.choices)
    statuses = dict(Delivery.Status.choices)
    context = {
        "campaign": campaign,
        "figures": figures,
        "by_status": [(statuses.get(k, k), n) for k, n in sorted(figures["by_status"].items())],
        "by_reason": [(reasons.get(k, k), n) for k, n in sorted(figures["by_reason"].items())],
        "steps": campaign_steps(campaign),
    }
    return TemplateResponse(request, "campaigns/detail.html", context)


@require_POST
@role_required(ANY_ROLE)
def campaign_action_view(request, pk: int, action: str):
    if action not in ACTIONS:
        raise Http404
    campaign = _visible(request, pk)
    try:
        ACTIONS[action](campaign=campaign, actor=request.user, ip=client_ip(request))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("campaigns:detail", pk=campaign.pk)


TASKS_LIMIT = 200


@role_required(ANY_ROLE)
def my_tasks_view(request):
    """The viewer's staff tasks due today and overdue: customer, text to copy, mark done."""
    now = timezone.now()
    viewer = viewer_for(request.user)
    tasks = list(staff_tasks_open(viewer.staff_id, now)[:TASKS_LIMIT])
    today = timezone.localdate(now)
    for task in tasks:
        task.overdue = timezone.localtime(task.due_at).date() < today
    return TemplateResponse(request, "campaigns/tasks.html", {"tasks": tasks, "limit": TASKS_LIMIT})


@require_POST
@role_required(ANY_ROLE)
def task_done_view(request, pk: int):
    viewer = viewer_for(request.user)
    task = StaffTask.objects.filter(pk=pk, staff_id=viewer.staff_id).first()
    if task is None or viewer.staff_id is None:
        raise Http404
    staff_task_done(task=task, staff=Staff(pk=viewer.staff_id))
    return redirect("campaigns:tasks")
