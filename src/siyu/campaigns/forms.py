"""Input parsing for the campaign pages; the services check every rule again.

The builder posts one form: the campaign's fields, then steps prefixed `s<i>-` and their
variants `s<i>v<j>-`, with the counts in `steps` and `s<i>-variants`. Adding or removing a step
or variant is a submit button (`op`), so it works as a plain post and, with htmx, swaps only
the steps part of the page.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.campaigns.builder import MAX_STEPS, MAX_VARIANTS, StepSpec
from siyu.campaigns.models import Campaign, ChannelName, Variant
from siyu.campaigns.triggers import TRIGGER_KINDS, trigger_validate
from siyu.content.models import Material, Script
from siyu.core.errors import form_add_error
from siyu.customers.models import Customer
from siyu.org.models import Staff
from siyu.org.selectors import Viewer, staff_visible_to
from siyu.segments.models import Segment
from siyu.tags.models import Tag
from siyu.webhooks.models import WebhookSubscription

MAX_DELAY_MINUTES = 366 * 24 * 60
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"


class PageForm(forms.Form):
    """The keyset cursor of the campaign list."""

    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


def _blank(choices) -> list:
    return [("", _("all")), *choices]


class FilterForm(forms.Form):
    """The campaign list's and calendar's filters."""

    status = forms.ChoiceField(label=_("Status"), required=False, choices=[])
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[])
    owner = forms.ModelChoiceField(label=_("Owner"), required=False, queryset=Staff.objects.none())

    def __init__(self, *args, viewer: Viewer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = _blank(Campaign.Status.choices)
        self.fields["kind"].choices = _blank(Campaign.Kind.choices)
        self.fields["owner"].queryset = staff_visible_to(viewer).order_by("name")
        self.fields["owner"].empty_label = _("all")

    def filter(self, campaigns):
        data = self.cleaned_data
        if data.get("status"):
            campaigns = campaigns.filter(status=data["status"])
        if data.get("kind"):
            campaigns = campaigns.filter(kind=data["kind"])
        if data.get("owner"):
            campaigns = campaigns.filter(owner=data["owner"])
        return campaigns


class ListForm(FilterForm):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def filter(self, campaigns):
        campaigns = super().filter(campaigns)
        if self.cleaned_data.get("q"):
            campaigns = campaigns.filter(name__icontains=self.cleaned_data["q"].strip())
        return campaigns


MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class CalendarForm(FilterForm):
    view = forms.ChoiceField(
        label=_("View"),
        required=False,
        choices=[("month", _("month")), ("week", _("week"))],
    )
    month = forms.RegexField(label=_("Month"), regex=MONTH, required=False)
    week = forms.DateField(label=_("Week of"), required=False)

    def clean_month(self):
        value = self.cleaned_data.get("month")
        if not value:
            return None
        year, month = (int(part) for part in value.split("-"))
        if not 2000 <= year <= 2100:
            raise forms.ValidationError(_("Choose a month between 2000 and 2100."))
        return timezone.localdate().replace(year=year, month=month, day=1)

    def clean_week(self):
        value = self.cleaned_data.get("week")
        if value and not 2000 <= value.year <= 2100:
            raise forms.ValidationError(_("Choose a week between 2000 and 2100."))
        return value


# ---------------------------------------------------------------------------- the builder

# The trigger kinds the builder offers, checked by the engine's one validator. A kind with a
# parameter needs a field below and a line in CampaignForm.trigger_value.
TRIGGER_CHOICES = [("", "—"), *TRIGGER_KINDS.items()]
UNITS = {"minutes": 1, "hours": 60, "days": 24 * 60}
UNIT_CHOICES = [("minutes", _("minutes")), ("hours", _("hours")), ("days", _("days"))]
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_MINUTE)


class CampaignForm(forms.Form):
    """WHO, WHEN, WHY and the name; WHERE and WHAT are the step and variant forms."""

    name = forms.CharField(label=_("Name"), max_length=100)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=Staff.objects.none())
    kind = forms.ChoiceField(label=_("Kind"), choices=Campaign.Kind.choices)
    segment = forms.ModelChoiceField(
        label=_("Segment"),
        required=False,
        queryset=Segment.objects.none(),
        help_text=_("Optional for triggered campaigns: then every customer in the owner's scope."),
    )
    start_at = forms.DateTimeField(
        label=_("Start"),
        required=False,
        widget=DATETIME,
        help_text=_("Empty: as soon as it is scheduled."),
    )
    end_at = forms.DateTimeField(label=_("End"), required=False, widget=DATETIME)
    schedule = forms.CharField(
        label=_("Schedule (cron)"),
        required=False,
        max_length=100,
        help_text=_(
            "minute hour day month weekday, in the organisation's zone: 0 10 * * 1 = "
            "Mondays at 10:00."
        ),
    )
    trigger = forms.ChoiceField(label=_("Trigger"), required=False, choices=TRIGGER_CHOICES)
    trigger_event_type = forms.SlugField(label=_("Event type"), required=False, max_length=60)
    trigger_days = forms.IntegerField(
        label=_("Days after joining"), required=False, min_value=0, max_value=3650
    )
    trigger_stage = forms.ChoiceField(
        label=_("Stage reached"), required=False, choices=[("", "—"), *Customer.Stage.choices]
    )
    trigger_tag = forms.ModelChoiceField(
        label=_("Tag added"), required=False, queryset=Tag.objects.none()
    )
    trigger_days_before = forms.IntegerField(
        label=_("Days before"), required=False, min_value=0, max_value=60
    )
    goal = forms.ChoiceField(label=_("Goal"), required=False, choices=Campaign.Goal.choices)
    goal_event_type = forms.SlugField(label=_("Goal event type"), required=False, max_length=60)
    goal_days = forms.IntegerField(
        label=_("Goal window (days)"), min_value=1, max_value=365, initial=7
    )
    goal_min_amount = forms.DecimalField(
        label=_("Minimum order amount (CNY)"),
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
    )
    cost = forms.DecimalField(
        label=_("Cost (CNY)"), required=False, min_value=0, max_digits=14, decimal_places=2
    )
    marketing = forms.BooleanField(
        label=_("Marketing message (frequency caps and quiet hours apply)"),
        required=False,
        initial=True,
    )

    def __init__(self, *args, viewer: Viewer, **kwargs):
        super().__init__(*args, **kwargs)
        staff = staff_visible_to(viewer).filter(status=Staff.Status.ACTIVE)
        self.fields["owner"].queryset = staff.order_by("name")
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        self.fields["kind"].widget.attrs["x-model"] = "kind"  # shows the kind's own fields
        self.fields["trigger_tag"].queryset = Tag.objects.select_related("group").order_by("name")

    def clean(self):
        data = super().clean()
        if data.get("kind") == Campaign.Kind.TRIGGERED and data.get("trigger"):
            try:
                data["trigger_cleaned"] = trigger_validate(self.trigger_value())
            except ValidationError as error:
                self.add_error("trigger", error)
        return data

    def trigger_value(self) -> dict:
        data = self.cleaned_data
        kind = data.get("trigger")
        if data.get("kind") != Campaign.Kind.TRIGGERED or not kind:
            return {}
        if kind == "event":
            return {"type": kind, "event_type": data.get("trigger_event_type") or ""}
        if kind == "joined":
            return {"type": kind, "days": data.get("trigger_days") or 0}
        if kind == "stage":
            return {"type": kind, "to": data.get("trigger_stage") or ""}
        if kind == "tag_added":
            tag = data.get("trigger_tag")
            return {"type": kind, "tag_id": tag.pk if tag else None}
        if kind in ("birthday", "anniversary"):
            return {"type": kind, "days_before": data.get("trigger_days_before") or 0}
        return {"type": kind}

    def values(self) -> dict:
        """The fields campaign_build sets."""
        data = self.cleaned_data
        kind = data["kind"]
        return {
            "name": data["name"],
            "kind": kind,
            "owner": data["owner"],
            "segment": data.get("segment"),
            "start_at": data.get("start_at"),
            "end_at": data.get("end_at"),
            "schedule": (data.get("schedule") or "").strip()
            if kind == Campaign.Kind.RECURRING
            else "",
            "trigger": data.get("trigger_cleaned") or self.trigger_value(),
            "goal": data.get("goal") or "",
            "goal_event_type": data.get("goal_event_type") or "",
            "goal_days": data.get("goal_days") or 7,
            "goal_min_amount": data.get("goal_min_amount"),
            "marketing": bool(data.get("marketing")),
            "cost": data.get("cost") or Decimal(0),
        }


class StepForm(forms.Form):
    channel = forms.ChoiceField(label=_("Channel"), choices=ChannelName.choices)
    delay = forms.IntegerField(label=_("Delay after entry"), min_value=0, initial=0, required=False)
    delay_unit = forms.ChoiceField(label=_("Unit"), choices=UNIT_CHOICES, required=False)
    webhook = forms.TypedChoiceField(
        label=_("Webhook"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, options: "Options", **kwargs):
        super().__init__(*args, **kwargs)
        self.options = options
        self.fields["webhook"].choices = [("", "—"), *options.webhooks.items()]

    def clean_webhook(self):
        pk = self.cleaned_data.get("webhook")
        return self.options.webhook_rows.get(pk) if pk else None

    def clean(self):
        data = super().clean()
        minutes = (data.get("delay") or 0) * UNITS.get(data.get("delay_unit") or "minutes", 1)
        if minutes > MAX_DELAY_MINUTES:
            self.add_error("delay", _("A delay is at most a year."))
        data["delay_minutes"] = minutes
        return data


class VariantForm(forms.Form):
    name = forms.CharField(label=_("Variant"), max_length=20, required=False)
    weight = forms.IntegerField(
        label=_("Weight"),
        min_value=0,
        max_value=1000,
        initial=1,
        help_text=_("Share of the A/B split; 0 switches the variant off."),
    )
    script = forms.TypedChoiceField(label=_("Script"), required=False, coerce=int, empty_value=None)
    material = forms.TypedChoiceField(
        label=_("Material"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("{material.link} in the text becomes each customer's own tracked link."),
    )
    subject = forms.CharField(label=_("Subject (e-mail)"), max_length=200, required=False)
    body = forms.CharField(
        label=_("Own text"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Used instead of the script when given; {customer.name} and {staff.name} are filled in."
        ),
    )

    def __init__(self, *args, options: "Options", **kwargs):
        super().__init__(*args, **kwargs)
        self.options = options
        self.fields["script"].choices = [("", "—"), *options.scripts.items()]
        self.fields["material"].choices = [("", "—"), *options.materials.items()]

    def clean_script(self):
        pk = self.cleaned_data.get("script")
        return self.options.script_rows.get(pk) if pk else None

    def clean_material(self):
        pk = self.cleaned_data.get("material")
        return self.options.material_rows.get(pk) if pk else None


class Options:
    """The scripts and webhooks every step and variant offers, read once per page (a select
    per variant would otherwise query them again)."""

    def __init__(self, in_use: set[int] | None = None, materials_in_use: set[int] | None = None):
        # Archived scripts and materials stay choosable where a variant already uses them.
        offered = Q(active=True) | Q(pk__in=in_use or set())
        scripts = list(Script.objects.filter(offered).order_by("title"))
        published = Q(status=Material.Status.PUBLISHED) | Q(pk__in=materials_in_use or set())
        materials = list(Material.objects.filter(published).order_by("title", "pk"))
        self.material_rows = {m.pk: m for m in materials}
        self.materials = {m.pk: m.title for m in materials}
        webhooks = list(WebhookSubscription.objects.filter(active=True).order_by("id"))
        self.script_rows = {s.pk: s for s in scripts}
        self.webhook_rows = {w.pk: w for w in webhooks}
        self.scripts = {s.pk: s.title for s in scripts}
        self.webhooks = {w.pk: w.description or w.url for w in webhooks}


# A builder's raw state: the posted (or stored) strings, before any validation.
Raw = dict


def int_or_none(value) -> int | None:
    """A posted id as an int, or None when it is not one (or would not fit a bigint)."""
    return int(value) if str(value or "").isdigit() and len(str(value)) < 19 else None


def _count(data, key: str, limit: int) -> int:
    try:
        return max(0, min(int(data.get(key, 0)), limit))
    except (TypeError, ValueError):
        return 0


def raw_from_post(data) -> Raw:
    """The builder's state from a post: the campaign fields and the steps with variants."""
    raw: Raw = {"campaign": {k: data.get(k, "") for k in CampaignForm.base_fields}, "steps": []}
    for i in range(_count(data, "steps", MAX_STEPS)):
        step = {k: data.get(f"s{i}-{k}", "") for k in StepForm.base_fields}
        variants = [
            {k: data.get(f"s{i}v{j}-{k}", "") for k in VariantForm.base_fields}
            for j in range(_count(data, f"s{i}-variants", MAX_VARIANTS))
        ]
        raw["steps"].append({"fields": step, "variants": variants})
    return raw


def _new_variant(index: int) -> dict:
    return {
        "name": chr(ord("A") + index),
        "weight": "1",
        "script": "",
        "material": "",
        "subject": "",
        "body": "",
    }


def _new_step(channel: str = ChannelName.STAFF_TASK) -> dict:
    return {
        "fields": {"channel": channel, "delay": "0", "delay_unit": "days", "webhook": ""},
        "variants": [_new_variant(0)],
    }


def raw_blank(viewer: Viewer) -> Raw:
    return {
        "campaign": {
            "kind": Campaign.Kind.BROADCAST,
            "owner": str(viewer.staff_id or ""),
            "goal_days": "7",
            "cost": "0",
            "marketing": "on",
        },
        "steps": [_new_step()],
    }


def _delay(minutes: int) -> tuple[str, str]:
    for unit in ("days", "hours"):
        if minutes and minutes % UNITS[unit] == 0:
            return str(minutes // UNITS[unit]), unit
    return str(minutes), "minutes"


def raw_from_campaign(campaign: Campaign, steps) -> Raw:
    """The stored campaign as the builder shows it; `steps` with their variants loaded."""
    trigger = campaign.trigger or {}

    def local(moment) -> str:
        return timezone.localtime(moment).strftime(LOCAL_MINUTE) if moment else ""

    fields = {
        "name": campaign.name,
        "owner": str(campaign.owner_id),
        "kind": campaign.kind,
        "segment": str(campaign.segment_id or ""),
        "start_at": local(campaign.start_at),
        "end_at": local(campaign.end_at),
        "schedule": campaign.schedule,
        "trigger": trigger.get("type", ""),
        "trigger_event_type": trigger.get("event_type", ""),
        "trigger_days": str(trigger.get("days", "")),
        "trigger_stage": trigger.get("to", ""),
        "trigger_tag": str(trigger.get("tag_id") or ""),
        "trigger_days_before": str(trigger.get("days_before", "")),
        "goal": campaign.goal,
        "goal_event_type": campaign.goal_event_type,
        "goal_days": str(campaign.goal_days),
        "goal_min_amount": ""
        if campaign.goal_min_amount is None
        else str(campaign.goal_min_amount),
        "cost": str(campaign.cost),
        "marketing": "on" if campaign.marketing else "",
    }
    raw_steps = []
    for step in steps:
        delay, unit = _delay(step.delay_minutes)
        raw_steps.append(
            {
                "fields": {
                    "channel": step.channel,
                    "delay": delay,
                    "delay_unit": unit,
                    "webhook": str(step.webhook_id or ""),
                },
                "variants": [
                    {
                        "name": v.name,
                        "weight": str(v.weight),
                        "script": str(v.script_id or ""),
                        "material": str(v.material_id or ""),
                        "subject": v.subject,
                        "body": v.body,
                    }
                    for v in step.variants.all()
                ],
            }
        )
    return {"campaign": fields, "steps": raw_steps}


OPS = re.compile(r"^(add_step|remove_step|add_variant|remove_variant)(?::(\d+))?(?::(\d+))?$")


def raw_apply(raw: Raw, op: str) -> str:
    """Apply a structural change (add/remove a step or variant) in place; returns an error
    message when it cannot be done, else ""."""
    match = OPS.match(op or "")
    if not match:
        return str(_("Unknown action."))
    what, i, j = match.group(1), match.group(2), match.group(3)
    steps = raw["steps"]
    if what == "add_step":
        if len(steps) >= MAX_STEPS:
            return str(_("A campaign has at most %(n)s steps.") % {"n": MAX_STEPS})
        steps.append(
            _new_step(steps[-1]["fields"].get("channel") if steps else ChannelName.STAFF_TASK)
        )
        return ""
    if i is None or int(i) >= len(steps):
        return str(_("That step does not exist."))
    step = steps[int(i)]
    if what == "remove_step":
        steps.pop(int(i))
    elif what == "add_variant":
        if len(step["variants"]) >= MAX_VARIANTS:
            return str(_("A step has at most %(n)s variants.") % {"n": MAX_VARIANTS})
        step["variants"].append(_new_variant(len(step["variants"])))
    else:
        if j is None or int(j) >= len(step["variants"]):
            return str(_("That variant does not exist."))
        step["variants"].pop(int(j))
    return ""


@dataclass
class StepForms:
    form: StepForm
    variants: list[VariantForm] = field(default_factory=list)


class Builder:
    """The builder's forms for one raw state: bound (to validate) or filled in (to show)."""

    def __init__(self, raw: Raw, *, viewer: Viewer, bound: bool, campaign=None):
        self.raw = raw
        self.steps_errors: list[str] = []
        # What the stored campaign already uses stays choosable (never what a post names).
        used = (
            Variant.objects.filter(step__campaign=campaign).values_list("script_id", "material_id")
            if campaign is not None
            else []
        )
        options = Options({s for s, _ in used} - {None}, {m for _, m in used} - {None})

        def make(cls, values: dict, prefix: str | None = None, **kwargs):
            if bound:
                data = {f"{prefix}-{k}" if prefix else k: v for k, v in values.items()}
                return cls(data, prefix=prefix, **kwargs)
            return cls(initial=values, prefix=prefix, **kwargs)

        self.campaign = make(CampaignForm, raw["campaign"], viewer=viewer)
        self.steps = [
            StepForms(
                make(StepForm, step["fields"], f"s{i}", options=options),
                [
                    make(VariantForm, variant, f"s{i}v{j}", options=options)
                    for j, variant in enumerate(step["variants"])
                ],
            )
            for i, step in enumerate(raw["steps"])
        ]

    def is_valid(self) -> bool:
        forms_ = [self.campaign, *(s.form for s in self.steps)]
        forms_ += [v for s in self.steps for v in s.variants]
        return all([f.is_valid() for f in forms_])  # a list: every form shows its errors

    def step_specs(self) -> list[StepSpec]:
        return [
            StepSpec(
                channel=s.form.cleaned_data["channel"],
                delay_minutes=s.form.cleaned_data["delay_minutes"],
                webhook=s.form.cleaned_data.get("webhook"),
                variants=[
                    {
                        "name": v.cleaned_data.get("name", ""),
                        "weight": v.cleaned_data["weight"],
                        "script": v.cleaned_data.get("script"),
                        "material": v.cleaned_data.get("material"),
                        "subject": v.cleaned_data.get("subject", ""),
                        "body": v.cleaned_data.get("body", ""),
                    }
                    for v in s.variants
                ],
            )
            for s in self.steps
        ]

    def channels(self) -> list[str]:
        return [s["fields"].get("channel", "") for s in self.raw["steps"]]


def builder_add_error(builder: Builder, error) -> None:
    """A service's refusal: step and variant rules above the steps, the rest under its field."""
    if error.field in ("steps", "variants"):
        builder.steps_errors.append(error.message)
    else:
        form_add_error(builder.campaign, error)
