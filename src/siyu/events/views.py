"""Console pages for the event type registry (admins only): the list and the edit form."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from siyu.console.access import ADMINS, role_required
from siyu.core.audit import client_ip
from siyu.events.forms import EventTypeForm
from siyu.events.models import EventType
from siyu.events.registry import RECENT_DAYS, event_type_rows, event_type_update


@role_required(ADMINS)
def type_list(request):
    context = {"rows": event_type_rows(), "recent_days": RECENT_DAYS}
    return TemplateResponse(request, "events/type_list.html", context)


@role_required(ADMINS)
def type_edit(request, name: str):
    event_type = get_object_or_404(EventType, name=name)
    form = EventTypeForm.for_type(event_type, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            event_type_update(
                actor=request.user,
                event_type=event_type,
                **form.cleaned_data,
                ip=client_ip(request),
            )
            messages.success(request, _("Event type saved."))
            return redirect("events:types")
        status = 400
    context = {"event_type": event_type, "form": form}
    return TemplateResponse(request, "events/type_form.html", context, status=status)
