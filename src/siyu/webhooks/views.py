"""Console pages for outgoing webhooks (admins only): subscriptions, their secrets (shown once),
test pings, and each subscription's delivery log with retries."""

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from siyu.console.access import ADMINS, role_required
from siyu.console.htmx import for_htmx
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError, form_add_error
from siyu.core.pagination import keyset_page
from siyu.webhooks import events
from siyu.webhooks.models import WebhookDelivery, WebhookSubscription
from siyu.webhooks.selectors import (
    webhook_delivery_get,
    webhook_delivery_log,
    webhook_subscription_get,
    webhook_subscription_list,
)
from siyu.webhooks.sending import webhook_delivery_retry, webhook_subscription_ping
from siyu.webhooks.services import (
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate_secret,
    webhook_subscription_set_active,
    webhook_subscription_update,
)

TYPE_CHOICES = [
    (events.ALL, gettext_lazy("Every event type")),
    *((name, format_lazy("{} · {}", label, name)) for name, label in events.CATALOGUE.items()),
]


class SubscriptionForm(forms.Form):
    url = forms.CharField(
        label=gettext_lazy("URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/siyu-webhook"}),
    )
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Event types"),
        choices=TYPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )


class TypesForm(SubscriptionForm):
    url = None  # the URL stays: a new endpoint gets a new subscription and secret


class LogFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("All")), *WebhookDelivery.Status.choices]
    )
    after = forms.IntegerField(required=False, min_value=1)
    before = forms.IntegerField(required=False, min_value=1)


def _subscription(pk: int) -> WebhookSubscription:
    try:
        return webhook_subscription_get(pk)
    except WebhookSubscription.DoesNotExist:
        raise Http404 from None


@role_required(ADMINS)
def subscription_list(request):
    context = {"subscriptions": webhook_subscription_list(), "catalogue": events.CATALOGUE}
    return TemplateResponse(request, "webhooks/list.html", context)


@never_cache
@role_required(ADMINS)
def subscription_create(request):
    form = SubscriptionForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                subscription = webhook_subscription_create(
                    actor=request.user, **form.cleaned_data, ip=client_ip(request)
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                # Rendered, not redirected: the full secret exists only in this response.
                context = {"subscription": subscription, "created": True}
                return TemplateResponse(request, "webhooks/secret.html", context)
    return TemplateResponse(request, "webhooks/form.html", {"form": form}, status=status)


@role_required(ADMINS)
@for_htmx(partial="webhooks/_deliveries.html")
def subscription_detail(request, pk: int):
    subscription = _subscription(pk)
    status = 200
    if request.method == "POST":
        form = TypesForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                webhook_subscription_update(
                    subscription=subscription,
                    **form.cleaned_data,
                    actor=request.user,
                    ip=client_ip(request),
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("Webhook saved."))
                return redirect("webhooks:detail", pk=pk)
    else:
        form = TypesForm(
            initial={
                "description": subscription.description,
                "event_types": subscription.event_types,
            }
        )
    filters = LogFilterForm(request.GET)
    filters.is_valid()  # a malformed filter is left out
    data = filters.cleaned_data
    page = keyset_page(
        webhook_delivery_log(subscription=subscription, status=data.get("status") or ""),
        after=data.get("after"),
        before=data.get("before"),
        size=settings.SIYU_PAGE_SIZE,
    )
    context = {"subscription": subscription, "form": form, "filters": filters, "page": page}
    return TemplateResponse(request, "webhooks/detail.html", context, status=status)


@require_POST
@role_required(ADMINS)
def subscription_set_active(request, pk: int):
    subscription = _subscription(pk)
    active = request.POST.get("active") == "1"
    reason = "" if active else _("Paused by %(user)s") % {"user": request.user.get_username()}
    webhook_subscription_set_active(subscription=subscription, active=active, reason=reason)
    messages.success(request, _("Webhook resumed.") if active else _("Webhook paused."))
    return redirect("webhooks:detail", pk=pk)


@never_cache
@require_POST
@role_required(ADMINS)
def subscription_rotate(request, pk: int):
    subscription = webhook_subscription_rotate_secret(
        subscription=_subscription(pk), actor=request.user, ip=client_ip(request)
    )
    context = {"subscription": subscription, "created": False}
    return TemplateResponse(request, "webhooks/secret.html", context)


@require_POST
@role_required(ADMINS)
def subscription_ping(request, pk: int):
    delivery = webhook_subscription_ping(subscription=_subscription(pk))
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        messages.success(
            request, _("Ping answered with HTTP %(code)s.") % {"code": delivery.last_status_code}
        )
    else:
        messages.error(request, _("Ping failed: %(error)s") % {"error": delivery.last_error})
    return redirect("webhooks:detail", pk=pk)


@require_POST
@role_required(ADMINS)
def subscription_delete(request, pk: int):
    webhook_subscription_delete(
        subscription=_subscription(pk), actor=request.user, ip=client_ip(request)
    )
    messages.success(request, _("Webhook deleted."))
    return redirect("webhooks:list")


@role_required(ADMINS)
def delivery_detail(request, pk: int):
    try:
        delivery = webhook_delivery_get(pk)
    except WebhookDelivery.DoesNotExist:
        raise Http404 from None
    context = {
        "delivery": delivery,
        "payload_json": json.dumps(delivery.payload, ensure_ascii=False, indent=2),
    }
    return TemplateResponse(request, "webhooks/delivery.html", context)


@require_POST
@role_required(ADMINS)
def delivery_retry(request, pk: int):
    try:
        delivery = webhook_delivery_get(pk)
    except WebhookDelivery.DoesNotExist:
        raise Http404 from None
    try:
        webhook_delivery_retry(delivery=delivery)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The delivery will be sent again shortly."))
    return redirect("webhooks:detail", pk=delivery.subscription_id)
