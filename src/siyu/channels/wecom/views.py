"""WeCom console pages (admins): the connection, contact sync and channel codes; and the
public callback endpoint."""

import logging

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from siyu.channels.wecom.callbacks import CallbackRefused, open_callback, verify_url
from siyu.channels.wecom.client import WecomError
from siyu.channels.wecom.corptags import tag_group_mirror
from siyu.channels.wecom.forms import ChannelCodeEditForm, ChannelCodeForm, TransferForm
from siyu.channels.wecom.models import ChannelCode
from siyu.channels.wecom.poster import channel_code_poster
from siyu.channels.wecom.selectors import (
    callback_recent,
    channel_code_get,
    channel_code_rows,
    connection_get,
    corp_tag_push_status,
    secret_hint,
    sync_run_history,
    sync_run_latest,
    transfer_list,
)
from siyu.channels.wecom.services import (
    CodeInput,
    callback_receive,
    channel_code_create,
    channel_code_delete,
    channel_code_update,
    connection_save,
    connection_test,
)
from siyu.channels.wecom.sync import sync_run_resume, sync_run_start
from siyu.channels.wecom.transfers import transfer_start, transfers_poll
from siyu.console.access import ADMINS, role_required
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError, form_add_error
from siyu.tags.models import TagGroup

log = logging.getLogger("siyu.wecom")

KEEP = gettext_lazy("Stored: %(hint)s. Leave blank to keep it.")


class ConnectionForm(forms.Form):
    corp_id = forms.CharField(label=gettext_lazy("Corp ID"), max_length=64)
    contact_secret = forms.CharField(
        label=gettext_lazy("Customer-contact secret"),
        max_length=128,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    callback_token = forms.CharField(
        label=gettext_lazy("Callback token"),
        max_length=32,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    encoding_aes_key = forms.CharField(
        label=gettext_lazy("EncodingAESKey"),
        max_length=43,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    agent_id = forms.CharField(
        label=gettext_lazy("Agent ID (optional)"), max_length=32, required=False
    )

    def __init__(self, *args, connection=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if connection is not None:
            for name in ("contact_secret", "callback_token", "encoding_aes_key"):
                self.fields[name].help_text = KEEP % {
                    "hint": secret_hint(getattr(connection, name))
                }


@never_cache
@role_required(ADMINS)
def connection_settings(request):
    connection = connection_get()
    status = 200
    if request.method == "POST":
        form = ConnectionForm(request.POST, connection=connection)
        status = 400
        if form.is_valid():
            try:
                connection_save(actor=request.user, **form.cleaned_data, ip=client_ip(request))
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("WeCom connection saved."))
                return redirect("wecom:settings")
    else:
        initial = (
            {"corp_id": connection.corp_id, "agent_id": connection.agent_id} if connection else {}
        )
        form = ConnectionForm(initial=initial, connection=connection)
    context = {
        "form": form,
        "connection": connection,
        "callback_url": request.build_absolute_uri("/wecom/callback/"),
        "callbacks": callback_recent(),
        "run": sync_run_latest(),
        "history": sync_run_history(),
        "tag_push": corp_tag_push_status() if connection else None,
    }
    return TemplateResponse(request, "wecom/settings.html", context, status=status)


@require_POST
@role_required(ADMINS)
def sync_start(request):
    if connection_get() is None:
        messages.error(request, _("Save the connection first."))
    else:
        sync_run_start(actor=request.user)
        messages.success(request, _("Sync of WeCom contacts started."))
    return redirect("wecom:settings")


@require_POST
@role_required(ADMINS)
def sync_resume(request):
    run = sync_run_latest()
    try:
        if run is None:
            raise DomainError(_("There is no sync to resume."))
        sync_run_resume(run=run)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Sync resumed."))
    return redirect("wecom:settings")


@role_required(ADMINS)
def sync_status(request):
    """The sync progress panel, polled by the settings page while a sync runs."""
    return TemplateResponse(request, "wecom/_sync.html", {"run": sync_run_latest()})


@require_POST
@role_required(ADMINS)
def connection_check(request):
    connection = connection_get()
    if connection is None:
        messages.error(request, _("Save the connection first."))
        return redirect("wecom:settings")
    check = connection_test(connection=connection)
    if check.ok:
        messages.success(
            request,
            _("Connected: WeCom answered with %(count)s staff members who may add customers.")
            % {"count": check.follow_users},
        )
    else:
        messages.error(request, _("Connection failed: %(reason)s") % {"reason": check.message})
    return redirect("wecom:settings")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def callback(request):
    """WeCom's callback URL: the URL check (GET) and event messages (POST).

    Public and CSRF-exempt: the signature is the authentication. Refusals answer a status and
    a short reason; a forged signature is logged with the caller's address.
    """
    connection = connection_get()
    if connection is None:
        return HttpResponse("WeCom is not configured", status=404, content_type="text/plain")
    try:
        if request.method == "GET":
            plain = verify_url(connection, request.GET)
            return HttpResponse(plain, content_type="text/plain; charset=utf-8")
        inbound = open_callback(connection, request.GET, request.body)
    except CallbackRefused as exc:
        if exc.status == 403:
            log.warning("wecom callback refused from %s: %s", client_ip(request) or "-", exc.reason)
        return HttpResponse(exc.reason, status=exc.status, content_type="text/plain")
    callback_receive(inbound=inbound)
    # WeCom wants an answer within 5 s: processing runs on the worker after the commit.
    return HttpResponse("success", content_type="text/plain")


# Channel codes


def _code(pk: int) -> ChannelCode:
    try:
        return channel_code_get(pk)
    except ChannelCode.DoesNotExist:
        raise Http404 from None


def _code_input(data: dict) -> CodeInput:
    return CodeInput(
        name=data["name"],
        staff=list(data["staff"]),
        tags=list(data["tags"]),
        welcome_script=data["welcome_script"],
        channel=data["channel"],
        spend=data["spend"],
        daily_cap=data["daily_cap"],
        skip_verify=data["skip_verify"],
    )


@role_required(ADMINS)
def code_list(request):
    return TemplateResponse(request, "wecom/codes.html", {"rows": channel_code_rows()})


@role_required(ADMINS)
def code_create(request):
    form = ChannelCodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                code = channel_code_create(
                    actor=request.user,
                    state=form.cleaned_data["state"],
                    data=_code_input(form.cleaned_data),
                    ip=client_ip(request),
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("Channel code created."))
                return redirect("wecom:code", pk=code.pk)
    return TemplateResponse(request, "wecom/code_form.html", {"form": form}, status=status)


@role_required(ADMINS)
def code_detail(request, pk: int):
    code = _code(pk)
    status = 200
    if request.method == "POST":
        form = ChannelCodeEditForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                channel_code_update(
                    actor=request.user,
                    code=code,
                    data=_code_input(form.cleaned_data),
                    ip=client_ip(request),
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("Channel code saved."))
                return redirect("wecom:code", pk=pk)
    else:
        form = ChannelCodeEditForm(
            initial={
                "name": code.name,
                "staff": list(code.staff.all()),
                "tags": list(code.tags.all()),
                "welcome_script": code.welcome_script,
                "channel": code.channel,
                "spend": code.spend,
                "daily_cap": code.daily_cap,
                "skip_verify": code.skip_verify,
            }
        )
    context = {"code": code, "form": form}
    return TemplateResponse(request, "wecom/code_form.html", context, status=status)


@require_POST
@role_required(ADMINS)
def code_delete(request, pk: int):
    code = _code(pk)
    try:
        channel_code_delete(actor=request.user, code=code, ip=client_ip(request))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("wecom:code", pk=pk)
    messages.success(request, _("Channel code deleted."))
    return redirect("wecom:codes")


@role_required(ADMINS)
def code_poster(request, pk: int):
    """The code's printable poster (SVG), downloaded; 502 with the reason when WeCom's QR image
    cannot be read."""
    code = _code(pk)
    try:
        poster = channel_code_poster(code=code)
    except DomainError as exc:
        return HttpResponse(exc.message, status=502, content_type="text/plain; charset=utf-8")
    response = HttpResponse(poster, content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="poster-{code.state}.svg"'
    return response


# Corp tags


@require_POST
@role_required(ADMINS)
def tag_group_mirror_view(request):
    """Mark a Siyu tag group to mirror in WeCom: it and its tags are created there."""
    raw = request.POST.get("group") or ""
    group = TagGroup.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    try:
        if group is None:
            raise DomainError(_("Choose a tag group."))
        tag_group_mirror(group=group)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(group)s is being created in WeCom.") % {"group": group.name})
    return redirect("wecom:settings")


# Transfers


@role_required(ADMINS)
def transfers(request):
    form = TransferForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                transfer = transfer_start(
                    actor=request.user, **form.cleaned_data, ip=client_ip(request)
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Transfer started for %(count)s customers; WeCom completes it in 24 hours.")
                    % {"count": transfer.items.count()},
                )
                return redirect("wecom:transfers")
    context = {"form": form, "transfers": transfer_list()}
    return TemplateResponse(request, "wecom/transfers.html", context, status=status)


@require_POST
@role_required(ADMINS)
def transfers_check(request):
    try:
        finished = transfers_poll()
    except (WecomError, DomainError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(count)s transfers finished.") % {"count": finished})
    return redirect("wecom:transfers")
