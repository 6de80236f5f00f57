"""The channel code form: the fields of services.CodeInput, plus the state when creating."""

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.content.models import Script
from siyu.customers.models import Channel
from siyu.org.models import Staff
from siyu.tags.models import Tag


class StaffChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Staff) -> str:
        return f"{obj} ({obj.wecom_userid})"


class ChannelCodeForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=100)
    state = forms.CharField(
        label=_("State"),
        max_length=30,
        help_text=_("Up to 30 letters, digits, - or _; WeCom reports it with every add."),
    )
    staff = StaffChoice(
        label=_("Staff"),
        queryset=Staff.objects.filter(status=Staff.Status.ACTIVE, wecom_userid__isnull=False),
        widget=forms.CheckboxSelectMultiple,
    )
    tags = forms.ModelMultipleChoiceField(
        label=_("Tags to apply"),
        queryset=Tag.objects.filter(rule__isnull=True).select_related("group"),
        required=False,
    )
    welcome_script = forms.ModelChoiceField(
        label=_("Welcome script"), queryset=Script.objects.filter(active=True), required=False
    )
    channel = forms.ModelChoiceField(
        label=_("Source channel"), queryset=Channel.objects.all(), required=False
    )
    spend = forms.DecimalField(
        label=_("Spend (CNY)"), min_value=0, max_digits=14, decimal_places=2, initial=0
    )
    daily_cap = forms.IntegerField(
        label=_("Daily adds per staff member"),
        min_value=0,
        max_value=100_000,
        initial=0,
        help_text=_("0: no cap. A staff member at the cap is offered no more adds until midnight."),
    )
    skip_verify = forms.BooleanField(
        label=_("Add without verification"), required=False, initial=True
    )


class ChannelCodeEditForm(ChannelCodeForm):
    state = None  # past adds carry the state: it never changes


class TransferForm(forms.Form):
    handover = forms.ModelChoiceField(
        label=_("From staff member"), queryset=Staff.objects.filter(wecom_userid__isnull=False)
    )
    takeover = forms.ModelChoiceField(
        label=_("To staff member"),
        queryset=Staff.objects.filter(status=Staff.Status.ACTIVE, wecom_userid__isnull=False),
    )
    resigned = forms.BooleanField(
        label=_("The first has left (inherit their customers)"), required=False
    )
    move_groups = forms.BooleanField(
        label=_("Also move the customer groups they own (always done for a member who left)"),
        required=False,
    )
