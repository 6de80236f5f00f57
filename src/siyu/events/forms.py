import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from siyu.events.models import EventType

# The segment builder's property filters accept these names (segments/dsl.py PROPERTY_NAME).
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")


def properties_parse(text: str) -> dict[str, str]:
    """ "name: meaning" lines into {name: meaning}; blank lines are skipped. A full-width colon
    counts too, as Chinese input methods type it."""
    properties: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, meaning = line.replace("：", ":").partition(":")
        name, meaning = name.strip(), meaning.strip()
        if not colon or not meaning:
            raise ValidationError(
                _('Line %(line)d: write "name: meaning".'), params={"line": number}
            )
        if not PROPERTY_NAME.fullmatch(name):
            raise ValidationError(
                _(
                    "Line %(line)d: “%(name)s” is not a property name (letters, digits and"
                    " underscores, not starting with a digit)."
                ),
                params={"line": number, "name": name[:60]},
            )
        if name in properties:
            raise ValidationError(
                _("Line %(line)d: “%(name)s” is listed twice."),
                params={"line": number, "name": name},
            )
        properties[name] = meaning
    return properties


class EventTypeForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    properties = forms.CharField(
        label=_("Properties"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        help_text=_("One per line: name: meaning, for example “material: the material viewed”."),
    )

    @classmethod
    def for_type(cls, event_type: EventType, data=None) -> "EventTypeForm":
        # Sorted: PostgreSQL's jsonb does not keep the order the lines were typed in.
        initial = {
            "label": event_type.label,
            "description": event_type.description,
            "properties": "\n".join(f"{k}: {v}" for k, v in sorted(event_type.properties.items())),
        }
        return cls(data, initial=initial)

    def clean_properties(self) -> dict[str, str]:
        return properties_parse(self.cleaned_data["properties"])
