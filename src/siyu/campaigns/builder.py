"""Building a campaign in the console: its 5W fields, steps and variants saved in one go.

The builder page posts the whole campaign each time, so the write is "replace": the fields are
set, the steps and variants rewritten. Re-exported from services.py with the other writes.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from siyu.campaigns.models import Campaign, ChannelName, Step, Variant
from siyu.campaigns.schedule import cron_parse
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.webhooks.models import WebhookSubscription

Status = Campaign.Status
# A draft is edited freely; a scheduled one may change until it starts, staying ready to run.
EDITABLE = (Status.DRAFT, Status.SCHEDULED)
MAX_STEPS = 20
MAX_VARIANTS = 10
# What campaign_build may set on a campaign (the rest belongs to the engine).
FIELDS = (
    "name",
    "kind",
    "owner",
    "segment",
    "start_at",
    "end_at",
    "schedule",
    "trigger",
    "goal",
    "goal_event_type",
    "goal_days",
    "goal_min_amount",
    "marketing",
    "cost",
)


@dataclass
class StepSpec:
    """One step as the builder posts it; variants are dicts of name, weight, script, subject,
    body."""

    channel: str
    delay_minutes: int = 0
    variants: list[dict] = field(default_factory=list)
    webhook: WebhookSubscription | None = None


def _check_fields(values: dict) -> None:
    if not (values.get("name") or "").strip():
        raise DomainError(_("A name is required."), field="name")
    if values.get("kind") not in Campaign.Kind.values:
        raise DomainError(_("Unknown campaign kind."), field="kind")
    if values.get("schedule"):
        cron_parse(values["schedule"])  # a malformed schedule is refused even in a draft
    start, end = values.get("start_at"), values.get("end_at")
    if start and end and end <= start:
        raise DomainError(_("The end must be after the start."), field="end_at")


def _steps_create(campaign: Campaign, steps: Sequence[StepSpec]) -> None:
    if len(steps) > MAX_STEPS:
        raise DomainError(
            _("A campaign has at most %(n)s steps.") % {"n": MAX_STEPS}, field="steps"
        )
    variants: list[Variant] = []
    for order, spec in enumerate(steps, start=1):
        where = _("Step %(n)s:") % {"n": order}
        if spec.channel not in ChannelName.values:
            raise DomainError(f"{where} {_('Choose a channel.')}", field="steps")
        if not spec.variants:
            raise DomainError(f"{where} {_('A step needs at least one variant.')}", field="steps")
        if len(spec.variants) > MAX_VARIANTS:
            raise DomainError(
                f"{where} " + _("A step has at most %(n)s variants.") % {"n": MAX_VARIANTS},
                field="steps",
            )
        step = Step.objects.create(
            campaign=campaign,
            order=order,
            delay_minutes=spec.delay_minutes,
            channel=spec.channel,
            webhook=spec.webhook if spec.channel == ChannelName.WEBHOOK else None,
        )
        names: set[str] = set()
        for index, item in enumerate(spec.variants):
            name = (item.get("name") or "").strip() or chr(ord("A") + index)
            if name in names:
                raise DomainError(
                    f"{where} " + _("Two variants are named %(name)s.") % {"name": name},
                    field="steps",
                )
            names.add(name)
            if not (item.get("body") or "").strip() and item.get("script") is None:
                raise DomainError(
                    f"{where} " + _("Variant %(name)s needs a script or a text.") % {"name": name},
                    field="steps",
                )
            variants.append(
                Variant(
                    step=step,
                    name=name,
                    weight=item.get("weight", 1),
                    script=item.get("script"),
                    material=item.get("material"),
                    subject=item.get("subject", ""),
                    body=item.get("body", ""),
                )
            )
    Variant.objects.bulk_create(variants)


@transaction.atomic
def campaign_build(
    *,
    campaign: Campaign | None,
    values: dict,
    steps: Sequence[StepSpec],
    actor=None,
    ip: str | None = None,
) -> Campaign:
    """Create a draft campaign, or rewrite a draft or scheduled one: `values` (see FIELDS) are
    set and the steps and variants replaced by `steps`.

    A scheduled campaign must still be ready to run afterwards (the checks of
    campaign_schedule). Raises DomainError naming the field; nothing is saved then.
    """
    from siyu.campaigns.services import _check_ready  # services re-exports this module

    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"campaign_build cannot set {sorted(unknown)}")
    _check_fields(values)
    values = {
        **values,
        "name": values["name"].strip()[:100],
        "trigger": values.get("trigger") or {},
    }
    if campaign is None:
        campaign = Campaign.objects.create(**values)
        action = AuditLog.Action.CREATE
    else:
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in EDITABLE:
            raise DomainError(
                _("Only a draft or scheduled campaign can be edited."), field="status"
            )
        for name, value in values.items():
            setattr(campaign, name, value)
        campaign.save()
        campaign.steps.all().delete()  # nothing is planned before a campaign starts
        action = AuditLog.Action.UPDATE
    _steps_create(campaign, steps)
    if campaign.status == Status.SCHEDULED:
        _check_ready(campaign)
    if actor is not None:
        audit_record(
            actor=actor,
            action=action,
            target=campaign,
            summary=f"built campaign {campaign.name}",
            ip=ip,
        )
    return campaign
