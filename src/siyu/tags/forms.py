"""Input parsing for the tag pages; the services re-check every rule."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.tags.models import Tag, TagGroup
from siyu.tags.services import DESCRIPTION_LENGTH, NAME_LENGTH


class TagGroupForm(forms.Form):
    name = forms.CharField(label=pgettext_lazy("tag", "Name"), max_length=NAME_LENGTH)
    dimension = forms.ChoiceField(label=_("Dimension"), choices=TagGroup.Dimension.choices)
    exclusive = forms.BooleanField(label=_("One tag per customer"), required=False)
    order = forms.IntegerField(
        label=_("Sort order"), required=False, min_value=0, max_value=100_000, initial=0
    )


class TagForm(forms.Form):
    name = forms.CharField(label=pgettext_lazy("tag", "Name"), max_length=NAME_LENGTH)
    colour = forms.RegexField(
        label=_("Colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        initial="#1677ff",
        widget=forms.TextInput(attrs={"type": "color"}),
        error_messages={"invalid": _("Choose a colour such as #1677ff.")},
    )
    description = forms.CharField(
        label=_("Description"), max_length=DESCRIPTION_LENGTH, required=False
    )
    order = forms.IntegerField(
        label=_("Sort order"), required=False, min_value=0, max_value=100_000, initial=0
    )
    rule = forms.JSONField(
        label=_("Rule (a segment definition)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text=_(
            "Leave empty for a tag put on by hand. With a rule, the tag's customers are exactly "
            'those it selects, refreshed every hour, e.g. {"attr": "rfm_group", "op": "eq", '
            '"value": "champions"}.'
        ),
        error_messages={"invalid": _("The rule is not valid JSON.")},
    )


class TagPickForm(forms.Form):
    tag = forms.ModelChoiceField(
        label=_("Tag"),
        queryset=Tag.objects.select_related("group"),
        error_messages={"invalid_choice": _("This tag does not exist (any more).")},
    )


class BulkTagForm(TagPickForm):
    action = forms.ChoiceField(
        label=_("Action"),
        choices=[("add", _("Add the tag")), ("remove", _("Remove the tag"))],
        initial="add",
    )
