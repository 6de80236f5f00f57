"""Console pages for REST API keys (admins only): list, create (the key is shown once), revoke."""

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from siyu.console.access import ADMINS, role_required
from siyu.core.api_keys import api_key_create, api_key_get, api_key_list, api_key_revoke
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError, form_add_error
from siyu.core.models import ApiKey
from siyu.org.models import Staff


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, staff: Staff) -> str:
        # The member's own name, as the key list shows it, not the persona customers see.
        return f"{staff.name} · {staff.store.name}" if staff.store_id else staff.name


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    staff = StaffChoiceField(
        label=gettext_lazy("Reads as"),
        queryset=Staff.objects.filter(status=Staff.Status.ACTIVE)
        .select_related("store")
        .order_by("name"),
        required=False,
        empty_label=gettext_lazy("Nobody: every customer, as an admin (back-office systems)"),
        help_text=gettext_lazy(
            "A key that reads as a staff member sees only their customers, as in the console."
        ),
    )


@role_required(ADMINS)
def key_list(request):
    return TemplateResponse(request, "core/api_keys.html", {"keys": api_key_list()})


@never_cache
@role_required(ADMINS)
def key_create(request):
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                key, raw_key = api_key_create(
                    actor=request.user, **form.cleaned_data, ip=client_ip(request)
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                # Rendered, not redirected: the full key exists only in this response.
                context = {"key": key, "raw_key": raw_key}
                return TemplateResponse(request, "core/api_key_created.html", context)
    return TemplateResponse(request, "core/api_key_form.html", {"form": form}, status=status)


@require_POST
@role_required(ADMINS)
def key_revoke(request, pk: int):
    try:
        key = api_key_get(pk)
    except ApiKey.DoesNotExist:
        raise Http404 from None
    api_key_revoke(actor=request.user, key=key, ip=client_ip(request))
    messages.success(request, _("API key revoked."))
    return redirect("apikeys:list")
