"""Input parsing for the segment pages; the services check every rule again."""

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.segments.segment_services import DESCRIPTION_LENGTH, NAME_LENGTH

MAX_DEFINITION_LENGTH = 100_000


class DefinitionForm(forms.Form):
    """A definition posted as JSON text, by the builder's script or typed by hand."""

    definition = forms.CharField(
        label=_("Definition (JSON)"),
        max_length=MAX_DEFINITION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        error_messages={"required": _("The definition is empty.")},
    )

    def clean_definition(self):
        try:
            return json.loads(self.cleaned_data["definition"])
        except ValueError as exc:
            raise forms.ValidationError(
                _("The definition is not valid JSON: %(why)s") % {"why": exc}
            ) from None


class SegmentForm(DefinitionForm):
    name = forms.CharField(label=_("Name"), max_length=NAME_LENGTH)
    description = forms.CharField(
        label=_("Description"), max_length=DESCRIPTION_LENGTH, required=False
    )
    field_order = ["name", "description", "definition"]


class SnapshotForm(forms.Form):
    name = forms.CharField(label=_("Snapshot name"), max_length=150, required=False)


class PageForm(forms.Form):
    """The keyset cursor of the members table."""

    after = forms.IntegerField(required=False, min_value=1)
    before = forms.IntegerField(required=False, min_value=1)
