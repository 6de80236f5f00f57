"""The audit log page: who saw, revealed, exported or merged what. Admins only."""

from django import forms
from django.conf import settings
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from siyu.console.access import ADMINS, role_required
from siyu.console.htmx import for_htmx
from siyu.core.audit import audit_list
from siyu.core.models import AuditLog
from siyu.core.pagination import keyset_page
from siyu.org.selectors import staff_visible_to, viewer_for


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("All actions")), *AuditLog.Action.choices],
    )
    actor = forms.TypedChoiceField(
        label=_("Actor"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("Anyone"))],
    )
    target = forms.CharField(
        label=_("Target"),
        required=False,
        max_length=120,
        widget=forms.TextInput(attrs={"placeholder": "customers.customer:123"}),
    )
    after = forms.IntegerField(
        label=_("Page link"), required=False, min_value=1, widget=forms.HiddenInput
    )
    before = forms.IntegerField(
        label=_("Page link"), required=False, min_value=1, widget=forms.HiddenInput
    )

    def __init__(self, data, *, staff) -> None:
        super().__init__(data)
        self.fields["actor"].choices = [
            *self.fields["actor"].choices,
            *((s.user_id, f"{s.name} ({s.user.get_username()})") for s in staff),
        ]


@role_required(ADMINS)
@for_htmx(partial="core/_audit_results.html")
def audit_log(request):
    viewer = viewer_for(request.user)
    form = AuditFilterForm(request.GET, staff=staff_visible_to(viewer))
    form.is_valid()  # invalid filters are reported and left out
    data = form.cleaned_data
    page = keyset_page(
        audit_list(
            action=data.get("action", ""),
            actor_id=data.get("actor"),
            target=data.get("target", ""),
        ),
        after=data.get("after"),
        before=data.get("before"),
        size=settings.SIYU_PAGE_SIZE,
    )
    return TemplateResponse(request, "core/audit_list.html", {"form": form, "page": page})
