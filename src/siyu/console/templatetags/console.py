"""Presentation helpers shared by console templates: masking, labels, ages."""

from datetime import date

from django import template
from django.apps import apps
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from siyu.core.masking import mask_identity, mask_phone
from siyu.org.models import Staff

register = template.Library()


@register.simple_tag
def phone_for(viewer, value: str) -> str:
    """The phone in full for viewers who may see it, else masked (`138****1234`)."""
    if not value:
        return ""
    return value if viewer.sees_full_pii else mask_phone(value)


@register.simple_tag
def identity_for(viewer, identity) -> str:
    if viewer.sees_full_pii:
        return identity.value
    return mask_identity(identity.kind, identity.value)


@register.filter
def role_label(role: str | None) -> str:
    if role in Staff.Role.values:
        return Staff.Role(role).label
    return ""


@register.filter
def age(birthday: date | None) -> int | None:
    """Whole years since `birthday`, in the organisation's time zone."""
    if not birthday:
        return None
    today = timezone.localdate()
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


@register.filter
def model_name_plural(label_lower: str) -> str:
    """`customers.identity` → the model's plural verbose name, or the label if unknown."""
    try:
        return str(apps.get_model(label_lower)._meta.verbose_name_plural)
    except (LookupError, ValueError):
        return label_lower


# Where an audit target opens in the console, by model label.
AUDIT_TARGET_URLS = {
    "customers.customer": "customers:detail",
    "imports.importjob": "imports:detail",
    "segments.segment": "segments:detail",
}


@register.filter
def audit_target_url(entry) -> str:
    url_name = AUDIT_TARGET_URLS.get(entry.target_type)
    if not url_name or not entry.target_id.isdigit():
        return ""
    try:
        return reverse(url_name, args=[entry.target_id])
    except NoReverseMatch:
        return ""
