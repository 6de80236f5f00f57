"""Writes of the campaign engine: build, schedule, pause, resume and cancel campaigns; staff
tasks; asynchronous results. Planning and sending live in planner.py and sender.py, the
console builder's whole-campaign save in builder.py, A/B
promotion in experiments.py and overdue reminders in staff_tasks.py; they are re-exported
here, so callers import every write from one place.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.campaigns.builder import StepSpec, campaign_build
from siyu.campaigns.experiments import variant_promote
from siyu.campaigns.models import (
    Campaign,
    ChannelName,
    Delivery,
    JourneyEnrollment,
    StaffTask,
    Step,
    Variant,
)
from siyu.campaigns.planner import campaign_plan, campaign_plan_due, variant_for
from siyu.campaigns.schedule import cron_parse
from siyu.campaigns.sender import (
    deliveries_claim,
    deliveries_poll_accepted,
    deliveries_reclaim_stuck,
    deliveries_send_due,
)
from siyu.campaigns.staff_tasks import staff_tasks_remind_overdue
from siyu.campaigns.triggers import trigger_validate
from siyu.channels.base import Outcome, Result, registered
from siyu.content.formatting import braced
from siyu.content.models import Material, Script
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.org.models import Staff
from siyu.segments.models import Segment
from siyu.webhooks.models import WebhookSubscription

__all__ = [
    "StepSpec",
    "campaign_build",
    "campaign_cancel",
    "campaign_create",
    "campaign_pause",
    "campaign_plan",
    "campaign_plan_due",
    "campaign_resume",
    "campaign_schedule",
    "deliveries_claim",
    "deliveries_poll_accepted",
    "deliveries_reclaim_stuck",
    "deliveries_send_due",
    "delivery_result_record",
    "staff_moments_create",
    "staff_task_done",
    "staff_tasks_create",
    "staff_tasks_remind_overdue",
    "step_add",
    "variant_for",
    "variant_promote",
]

Status = Campaign.Status


@transaction.atomic
def campaign_create(
    *,
    name: str,
    kind: str,
    owner: Staff,
    segment: Segment | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    schedule: str = "",
    trigger: dict | None = None,
    goal: str = "",
    goal_event_type: str = "",
    goal_days: int = 7,
    goal_min_amount: Decimal | None = None,
    marketing: bool = True,
    cost: Decimal = Decimal(0),
) -> Campaign:
    """A draft campaign. Raises DomainError for an unknown kind or a blank name."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if kind not in Campaign.Kind.values:
        raise DomainError(_("Unknown campaign kind."), field="kind")
    return Campaign.objects.create(
        name=name[:100],
        kind=kind,
        owner=owner,
        segment=segment,
        start_at=start_at,
        end_at=end_at,
        schedule=schedule,
        trigger=trigger or {},
        goal=goal,
        goal_event_type=goal_event_type,
        goal_days=goal_days,
        goal_min_amount=goal_min_amount,
        marketing=marketing,
        cost=cost,
    )


@transaction.atomic
def step_add(
    *,
    campaign: Campaign,
    channel: str,
    delay_minutes: int = 0,
    variants: Sequence[dict],
    webhook: WebhookSubscription | None = None,
) -> Step:
    """Add a step with its variants: dicts of name, weight, script, material, subject, body.

    Raises DomainError when the campaign is no longer a draft, or a variant has no text.
    """
    if campaign.status != Status.DRAFT:
        raise DomainError(_("Only a draft campaign can be changed."), field="status")
    if not variants:
        raise DomainError(_("A step needs at least one variant."), field="variants")
    order = (campaign.steps.order_by("-order").values_list("order", flat=True).first() or 0) + 1
    step = Step.objects.create(
        campaign=campaign,
        order=order,
        delay_minutes=delay_minutes,
        channel=channel,
        webhook=webhook,
    )
    for index, spec in enumerate(variants):
        script: Script | None = spec.get("script")
        material: Material | None = spec.get("material")
        body = spec.get("body", "")
        if not body and script is None:
            raise DomainError(_("A variant needs a script or a text."), field="variants")
        Variant.objects.create(
            step=step,
            name=spec.get("name") or chr(ord("A") + index),
            weight=spec.get("weight", 1),
            script=script,
            material=material,
            subject=spec.get("subject", ""),
            body=body,
        )
    return step


def _check_ready(campaign: Campaign) -> None:
    steps = list(campaign.steps.prefetch_related("variants"))
    if not steps:
        raise DomainError(_("A campaign needs at least one step."), field="steps")
    channels = registered()
    for step in steps:
        if step.channel not in channels:
            raise DomainError(
                _("The channel %(channel)s is not available.") % {"channel": step.channel},
                field="steps",
            )
        if step.channel == "webhook" and step.webhook_id is None:
            raise DomainError(_("A webhook step needs a webhook."), field="steps")
        if not any(v.weight > 0 for v in step.variants.all()):
            raise DomainError(_("Every step needs a variant with a weight."), field="steps")
        if step.channel == ChannelName.STAFF_MOMENTS:
            _check_moments(step)
    kind = campaign.kind
    if kind != Campaign.Kind.TRIGGERED and campaign.segment_id is None:
        raise DomainError(_("Choose a segment."), field="segment")
    if kind == Campaign.Kind.RECURRING:
        cron_parse(campaign.schedule)
    if kind == Campaign.Kind.TRIGGERED:
        try:
            campaign.trigger = trigger_validate(campaign.trigger)
        except ValidationError as error:
            raise DomainError(error.messages[0], field="trigger") from error
    if campaign.goal == Campaign.Goal.EVENT and not campaign.goal_event_type:
        raise DomainError(_("Choose the goal's event type."), field="goal_event_type")


# A moments post is one text for all of a staff member's customers: nothing of one customer.
CUSTOMER_VARIABLES = ("customer.name", "customer.city")


def _check_moments(step: Step) -> None:
    where = _("Step %(n)s:") % {"n": step.order}
    variants = list(step.variants.all())
    if len(variants) > 1:
        raise DomainError(
            f"{where} " + _("A moments post has one variant: each staff member posts once."),
            field="steps",
        )
    used = [name for name in CUSTOMER_VARIABLES if braced([name]) in variants[0].text]
    if used:
        raise DomainError(
            f"{where} "
            + _("A moments post is seen by many customers: remove %(names)s.")
            % {"names": braced(used)},
            field="steps",
        )


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    """Draft → scheduled; the planner starts it at start_at (now when empty).

    Raises DomainError naming what is missing: steps, variants, segment, schedule, trigger.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Status.DRAFT:
        raise DomainError(_("Only a draft campaign can be scheduled."), field="status")
    _check_ready(campaign)
    campaign.start_at = campaign.start_at or now or timezone.now()
    campaign.status = Status.SCHEDULED
    campaign.save(update_fields=["status", "start_at", "trigger", "updated_at"])
    return campaign


def _audit(campaign: Campaign, actor, ip: str | None, what: str) -> None:
    if actor is not None:
        audit_record(
            actor=actor,
            action=AuditLog.Action.UPDATE,
            target=campaign,
            summary=f"{what} campaign {campaign.name}",
            ip=ip,
        )


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor=None, ip: str | None = None) -> Campaign:
    """Hold a scheduled or running campaign: nothing is planned or sent until it resumes.
    Pending deliveries stay pending (the sender only claims those of running campaigns)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Status.SCHEDULED, Status.RUNNING):
        raise DomainError(_("Only a scheduled or running campaign can be paused."))
    campaign.status = Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, actor, ip, "paused")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor=None, ip: str | None = None) -> Campaign:
    """Paused → running again (or scheduled when it never started); what fell due while it was
    paused goes out now, subject to quiet hours and caps."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Status.PAUSED:
        raise DomainError(_("Only a paused campaign can be resumed."))
    campaign.status = Status.RUNNING if campaign.started_at else Status.SCHEDULED
    campaign.paused_reason = ""
    campaign.save(update_fields=["status", "paused_reason", "updated_at"])
    _audit(campaign, actor, ip, "resumed")
    return campaign


@transaction.atomic
def campaign_cancel(
    *, campaign: Campaign, now: datetime | None = None, actor=None, ip: str | None = None
) -> int:
    """Stop for good: pending deliveries become cancelled, journeys close. Returns how many
    deliveries were cancelled; those already sending finish."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Status.CANCELLED, Status.COMPLETED):
        raise DomainError(_("The campaign has already ended."))
    campaign.status, campaign.finished_at = Status.CANCELLED, now
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    _audit(campaign, actor, ip, "cancelled")
    JourneyEnrollment.objects.filter(campaign=campaign, exited_at__isnull=True).update(
        exited_at=now, exit_reason=JourneyEnrollment.ExitReason.CANCELLED
    )
    return Delivery.objects.filter(campaign=campaign, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED
    )


@transaction.atomic
def staff_tasks_create(*, items: Sequence[tuple[int, int | None, int, str]]) -> dict[int, int]:
    """Tasks for (delivery id, staff id, customer id, text); returns delivery id → task id.

    A delivery has at most one task, so a batch sent again after a crash adds nothing.
    """
    now = timezone.now()
    StaffTask.objects.bulk_create(
        [
            StaffTask(delivery_id=d, staff_id=s, customer_id=c, text=text, due_at=now)
            for d, s, c, text in items
            if s is not None
        ],
        ignore_conflicts=True,
    )
    return dict(
        StaffTask.objects.filter(delivery_id__in=[item[0] for item in items]).values_list(
            "delivery_id", "id"
        )
    )


@transaction.atomic
def staff_moments_create(*, items: dict[tuple[int, int, str], str]) -> dict[tuple, int]:
    """Moments tasks for (staff id, step id, occurrence) → text; returns the same keys → task id.

    One task per key, whatever the number of batches or retries that reach it: the first text
    stays.
    """
    now = timezone.now()
    StaffTask.objects.bulk_create(
        [
            StaffTask(
                kind=StaffTask.Kind.MOMENTS,
                staff_id=staff,
                step_id=step,
                occurrence=occurrence,
                text=text,
                due_at=now,
            )
            for (staff, step, occurrence), text in items.items()
        ],
        ignore_conflicts=True,
    )
    found = StaffTask.objects.filter(
        kind=StaffTask.Kind.MOMENTS,
        staff_id__in={staff for staff, _, _ in items},
        step_id__in={step for _, step, _ in items},
        occurrence__in={occurrence for _, _, occurrence in items},
    ).values_list("staff_id", "step_id", "occurrence", "id")
    return {key[:3]: key[3] for key in found if key[:3] in items}


@transaction.atomic
def staff_task_done(*, task: StaffTask, staff: Staff, now: datetime | None = None) -> StaffTask:
    """Mark the task done; only the staff member it belongs to may. Raises DomainError."""
    if task.staff_id != staff.pk:
        raise DomainError(_("This task belongs to someone else."), code="forbidden")
    if task.done_at is None:
        task.done_at = now or timezone.now()
        task.save(update_fields=["done_at"])
    return task


@transaction.atomic
def delivery_result_record(*, channel: str, external_id: str, result: Result) -> int:
    """Record the final outcome of an accepted (asynchronous) send, from a callback or a poll.

    Returns how many deliveries it settled (0 when none was waiting under that id).
    """
    if result.outcome == Outcome.ACCEPTED:
        return 0
    rows = Delivery.objects.filter(
        channel=channel, external_id=external_id, status=Delivery.Status.ACCEPTED
    )
    if result.outcome == Outcome.SENT:
        return rows.update(status=Delivery.Status.SENT, error="")
    return rows.update(status=Delivery.Status.FAILED, error=result.error, sent_at=None)
