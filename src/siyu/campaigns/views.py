"""Console pages for campaigns: the list, the calendar, the 5W builder, a campaign's figures,
pause / resume / cancel, and my tasks.

Everyone sees the campaigns in their scope (campaigns_visible_to) and may act on those;
admins and managers build them (a staff member's campaigns are built for them).
"""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.campaigns.builder import EDITABLE
from siyu.campaigns.calendar import calendar_days, month_bounds
from siyu.campaigns.forms import (
    Builder,
    CalendarForm,
    ListForm,
    PageForm,
    builder_add_error,
    int_or_none,
    raw_apply,
    raw_blank,
    raw_from_campaign,
    raw_from_post,
)
from siyu.campaigns.models import Campaign, ChannelName, Delivery, StaffTask
from siyu.campaigns.schedule import cron_next
from siyu.campaigns.selectors import (
    AudiencePreview,
    campaign_audience_preview,
    campaign_engagement,
    campaign_figures,
    campaign_steps,
    campaigns_visible_to,
    moments_audiences,
    staff_tasks_open,
)
from siyu.campaigns.services import (
    campaign_build,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    staff_task_done,
)
from siyu.console.access import ANY_ROLE, LEADS, role_required
from siyu.console.htmx import for_htmx, is_htmx_partial
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
    viewer = viewer_for(request.user)
    cursor = PageForm(request.GET)
    data = cursor.cleaned_data if cursor.is_valid() else {}
    filters = ListForm(request.GET, viewer=viewer)
    campaigns = campaigns_visible_to(viewer)
    if filters.is_valid():
        campaigns = filters.filter(campaigns)
    page = keyset_page(
        campaigns, after=data.get("after"), before=data.get("before"), size=settings.SIYU_PAGE_SIZE
    )
    context = {"page": page, "filters": filters, "can_build": viewer.role in LEADS}
    return TemplateResponse(request, "campaigns/list.html", context, status=_status(filters))


def _status(form) -> int:
    return 400 if form.is_bound and form.errors else 200


@role_required(ANY_ROLE)
def campaign_calendar_view(request):
    """A month grid (or a week's list) of starts, next runs and running spans."""
    viewer = viewer_for(request.user)
    form = CalendarForm(request.GET, viewer=viewer)
    data = form.cleaned_data if form.is_valid() else {}
    campaigns = form.filter(campaigns_visible_to(viewer)) if data else campaigns_visible_to(viewer)
    today = timezone.localdate()
    week_view = data.get("view") == "week"
    if week_view:
        anchor = data.get("week") or today
        first = anchor - timedelta(days=anchor.weekday())
        last = first + timedelta(days=6)
        days = calendar_days(campaigns, first=first, last=last)
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
        context = {"title_date": first, "previous": previous, "following": following}
    else:
        month = data.get("month") or today.replace(day=1)
        first, last, month_first, month_last = month_bounds(month)
        days = calendar_days(campaigns, first=first, last=last, in_range=(month_first, month_last))
        previous = (month_first - timedelta(days=1)).replace(day=1)
        following = month_last + timedelta(days=1)
        context = {"title_date": month_first, "previous": previous, "following": following}
    weeks = [days[i : i + 7] for i in range(0, len(days), 7)]
    context |= {
        "form": form,
        "days": days,
        "weeks": weeks,
        "week_view": week_view,
        "last": last,
        "can_build": viewer.role in LEADS,
        "filter_query": _filter_query(form),
    }
    return TemplateResponse(request, "campaigns/calendar.html", context, status=_status(form))


def _filter_query(form) -> str:
    """The filters as a query string, for the previous/next links."""
    data = getattr(form, "cleaned_data", {}) or {}
    pairs = {k: data.get(k) for k in ("status", "kind") if data.get(k)}
    if data.get("owner"):
        pairs["owner"] = data["owner"].pk
    return urlencode(pairs)


# ---------------------------------------------------------------------------- the builder

STRUCTURE_OPS = ("add_step", "remove_step", "add_variant", "remove_variant")


def _editable(request, pk: int) -> Campaign:
    campaign = _visible(request, pk)
    if campaign.status not in EDITABLE:
        raise Http404
    return campaign


@role_required(LEADS)
def campaign_new_view(request):
    return _builder(request, None)


@role_required(LEADS)
def campaign_edit_view(request, pk: int):
    return _builder(request, _editable(request, pk))


def _preview(builder: Builder, viewer) -> AudiencePreview | None:
    """The audience preview for the builder's current (maybe unsaved) values."""
    form = builder.campaign
    data = form.cleaned_data if form.is_bound else {}
    if form.is_bound:
        kind, segment, owner = data.get("kind"), data.get("segment"), data.get("owner")
        marketing = bool(data.get("marketing"))
    else:
        initial = form.initial
        kind = initial.get("kind")
        segment = (
            form.fields["segment"].queryset.filter(pk=int_or_none(initial.get("segment"))).first()
        )
        owner = form.fields["owner"].queryset.filter(pk=int_or_none(initial.get("owner"))).first()
        marketing = bool(initial.get("marketing"))
    if owner is None or (segment is None and kind != Campaign.Kind.TRIGGERED):
        return None
    channels = [c for c in builder.channels() if c in ChannelName.values]
    return campaign_audience_preview(
        kind=kind, segment=segment, owner=owner, channels=channels, marketing=marketing
    )


def _next_runs(builder: Builder) -> dict:
    """The recurring schedule's next runs, or why it cannot run, for people to check."""
    form = builder.campaign
    schedule = str(form["schedule"].value() or "").strip()
    if str(form["kind"].value()) != Campaign.Kind.RECURRING or not schedule:
        return {}
    try:
        return {"next_runs": cron_next(schedule, after=timezone.now())}
    except DomainError as error:
        return {"runs_error": error.message}


def _save(request, builder: Builder, campaign: Campaign | None, *, schedule: bool):
    """Save through the services; (the campaign, a redirect) on success, else (the campaign as
    it now stands, None) with the refusal added under its field."""
    try:
        campaign = campaign_build(
            campaign=campaign,
            values=builder.campaign.values(),
            steps=builder.step_specs(),
            actor=request.user,
            ip=client_ip(request),
        )
    except DomainError as error:
        builder_add_error(builder, error)
        return campaign, None
    if schedule and campaign.status == Campaign.Status.DRAFT:
        try:
            campaign = campaign_schedule(campaign=campaign)
        except DomainError as error:
            builder_add_error(builder, error)
            messages.warning(request, _("The draft is saved, but it cannot be scheduled yet."))
            return campaign, None
        messages.success(request, _("The campaign is scheduled."))
        return campaign, redirect("campaigns:detail", pk=campaign.pk)
    if campaign.status == Campaign.Status.SCHEDULED:
        messages.success(request, _("Saved; the campaign stays scheduled."))
        return campaign, redirect("campaigns:detail", pk=campaign.pk)
    messages.success(request, _("Draft saved."))
    return campaign, redirect("campaigns:edit", pk=campaign.pk)


def _builder(request, campaign: Campaign | None):
    """GET shows the campaign (or a blank one); POST applies `op`: add/remove a step or
    variant (re-shown, nothing saved), preview the audience, save, or save and schedule."""
    viewer = viewer_for(request.user)
    status, notice, preview = 200, "", None
    if request.method != "POST":
        raw = raw_from_campaign(campaign, campaign_steps(campaign)) if campaign else None
        builder = Builder(raw or raw_blank(viewer), viewer=viewer, bound=False, campaign=campaign)
        show_preview = campaign is not None
    else:
        raw = raw_from_post(request.POST)
        op = request.POST.get("op", "save")
        show_preview = op == "preview"
        if op.split(":")[0] in STRUCTURE_OPS:
            notice = raw_apply(raw, op)
            builder = Builder(raw, viewer=viewer, bound=False, campaign=campaign)
            if is_htmx_partial(request):
                context = {"builder": builder, "notice": notice}
                return TemplateResponse(request, "campaigns/_steps.html", context)
        else:
            builder = Builder(raw, viewer=viewer, bound=True, campaign=campaign)
            if not builder.is_valid():
                status = 400
            elif op in ("save", "schedule"):
                campaign, done = _save(request, builder, campaign, schedule=op == "schedule")
                if done is not None:
                    return done
                status = 400
    if show_preview and not (builder.campaign.is_bound and builder.campaign.errors):
        try:
            preview = _preview(builder, viewer)
        except DomainError as error:  # a segment whose definition no longer compiles
            notice = error.message
    context = {
        "builder": builder,
        "campaign": campaign,
        "preview": preview,
        "notice": notice,
    }
    context |= _next_runs(builder)
    if request.method == "POST" and is_htmx_partial(request):
        if request.POST.get("op") == "runs":
            return TemplateResponse(request, "campaigns/_runs.html", context)
        if show_preview:
            return TemplateResponse(request, "campaigns/_preview.html", context, status=status)
    return TemplateResponse(request, "campaigns/builder.html", context, status=status)


@role_required(ANY_ROLE)
def campaign_detail_view(request, pk: int):
    campaign = _visible(request, pk)
    figures = campaign_figures(campaign)
    engagement, by_staff = campaign_engagement(campaign)
    reasons = dict(Delivery.Reason.choices)
    statuses = dict(Delivery.Status.choices)
    context = {
        "campaign": campaign,
        "figures": figures,
        "by_status": [(statuses.get(k, k), n) for k, n in sorted(figures["by_status"].items())],
        "by_reason": [(reasons.get(k, k), n) for k, n in sorted(figures["by_reason"].items())],
        "steps": campaign_steps(campaign),
        "engagement": engagement,
        "by_staff": by_staff,
        "live": campaign.status in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING),
        "can_build": viewer_for(request.user).role in LEADS,
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
    """The viewer's staff tasks due today and overdue: the customer (or, for a moments post, how
    many customers will see it), the text to copy, mark done."""
    now = timezone.now()
    viewer = viewer_for(request.user)
    tasks = list(staff_tasks_open(viewer.staff_id, now)[:TASKS_LIMIT])
    audiences = moments_audiences(tasks)
    today = timezone.localdate(now)
    for task in tasks:
        task.overdue = timezone.localtime(task.due_at).date() < today
        task.audience = audiences.get(task.pk, 0)
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
