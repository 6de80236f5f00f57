"""What can start a triggered campaign, and the one place a trigger is checked.

The console builder, the API and campaign_schedule all call trigger_validate, so a trigger
that reaches the planner is always well formed. The planner's SQL for each kind is in
planner._trigger_audience (docs/campaigns.md, "Triggers").
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.customers.models import Customer

# type → label; the order is the builder's menu.
TRIGGER_KINDS: dict[str, str] = {
    "event": gettext_lazy("an event happens"),
    "stage": gettext_lazy("the lifecycle stage changes to"),
    "tag_added": gettext_lazy("a tag is added"),
    "joined": gettext_lazy("N days after joining"),
    "birthday": gettext_lazy("birthday (or N days before)"),
    "anniversary": gettext_lazy("membership anniversary (or N days before)"),
}
MAX_DAYS_AFTER_JOINING = 3650
MAX_DAYS_BEFORE = 60


def _days(trigger: dict, key: str, upper: int, message: str) -> int:
    value = trigger.get(key, 0)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    # bool is an int in Python; true/false is not a number of days.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise ValidationError(message, code="invalid")
    return value


def trigger_validate(trigger: object) -> dict:
    """The trigger, cleaned: only its type's keys, numbers as ints.

    Raises django.core.exceptions.ValidationError with a message to show next to the field.
    """
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGER_KINDS:
        raise ValidationError(_("Choose a trigger."), code="invalid")
    kind = trigger["type"]
    if kind == "event":
        event_type = trigger.get("event_type")
        if not isinstance(event_type, str) or not event_type.strip():
            raise ValidationError(_("Choose the event type that triggers."), code="invalid")
        return {"type": kind, "event_type": event_type.strip()[:60]}
    if kind == "stage":
        if trigger.get("to") not in Customer.Stage.values:
            raise ValidationError(_("Choose the stage that triggers."), code="invalid")
        return {"type": kind, "to": trigger["to"]}
    if kind == "tag_added":
        from siyu.tags.models import Tag

        tag_id = trigger.get("tag_id")
        if isinstance(tag_id, str) and tag_id.strip().isdigit():
            tag_id = int(tag_id)
        if (
            isinstance(tag_id, bool)
            or not isinstance(tag_id, int)
            or not Tag.objects.filter(pk=tag_id).exists()
        ):
            raise ValidationError(_("Choose the tag that triggers."), code="invalid")
        return {"type": kind, "tag_id": tag_id}
    if kind == "joined":
        days = _days(
            trigger,
            "days",
            MAX_DAYS_AFTER_JOINING,
            _("Days after joining must be 0 to %(max)d.") % {"max": MAX_DAYS_AFTER_JOINING},
        )
        return {"type": kind, "days": days}
    days = _days(
        trigger,
        "days_before",
        MAX_DAYS_BEFORE,
        _("Days before must be 0 to %(max)d.") % {"max": MAX_DAYS_BEFORE},
    )
    return {"type": kind, "days_before": days}
