"""Console pages for tags: the catalogue (admins, managers), the profile's tag panel (anyone,
within their scope) and bulk tagging of the customer list's current selection."""

from functools import partial

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import ANY_ROLE, LEADS, role_required
from siyu.console.htmx import is_htmx_partial
from siyu.core.errors import DomainError, form_add_error
from siyu.customers.selectors import channel_list, customer_get, customer_search
from siyu.customers.views import CustomerFilterForm, customer_filters
from siyu.org.selectors import staff_visible_to, stores_visible_to, viewer_for
from siyu.tags.forms import BulkTagForm, TagForm, TagGroupForm, TagPickForm
from siyu.tags.models import Source, Tag
from siyu.tags.selectors import tag_catalogue, tag_get, tag_group_get
from siyu.tags.services import (
    MAX_BULK,
    tag_create,
    tag_delete,
    tag_group_create,
    tag_group_delete,
    tag_group_update,
    tag_update,
    tags_assign,
    tags_remove,
)
from siyu.tags.tasks import rule_tag_refresh_task
from siyu.tags.templatetags.tagging import customer_tags_context

# The catalogue


@role_required(LEADS)
def tag_index(request):
    viewer = viewer_for(request.user)
    return TemplateResponse(request, "tags/index.html", {"groups": tag_catalogue(viewer)})


def _save(request, form, title: str, save, *, tag: Tag | None = None) -> HttpResponse:
    """Validate, call the service, and go back to the catalogue; errors re-render with 400."""
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                save(form.cleaned_data)
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect("tags:index")
    return TemplateResponse(
        request, "tags/form.html", {"form": form, "title": title, "tag": tag}, status=status
    )


@role_required(LEADS)
def group_create(request):
    form = TagGroupForm(request.POST if request.method == "POST" else None)
    return _save(request, form, _("New tag group"), lambda data: tag_group_create(**data))


@role_required(LEADS)
def group_edit(request, pk: int):
    group = tag_group_get(pk)
    initial = {f: getattr(group, f) for f in ("name", "dimension", "exclusive", "order")}
    form = TagGroupForm(request.POST if request.method == "POST" else None, initial=initial)
    return _save(
        request, form, _("Edit tag group"), lambda data: tag_group_update(group=group, **data)
    )


@role_required(LEADS)
@require_POST
def group_delete(request, pk: int):
    tag_group_delete(group=tag_group_get(pk), user=request.user)
    messages.success(request, _("The tag group was deleted."))
    return redirect("tags:index")


@role_required(LEADS)
def tag_new(request, group_pk: int):
    group = tag_group_get(group_pk)
    form = TagForm(request.POST if request.method == "POST" else None)
    title = _("New tag in %(group)s") % {"group": group.name}
    return _save(request, form, title, lambda data: _refresh_later(tag_create(group=group, **data)))


@role_required(LEADS)
def tag_edit(request, pk: int):
    tag = tag_get(pk)
    initial = {f: getattr(tag, f) for f in ("name", "colour", "description", "order", "rule")}
    form = TagForm(request.POST if request.method == "POST" else None, initial=initial)
    return _save(
        request,
        form,
        _("Edit tag"),
        lambda data: _refresh_later(tag_update(tag=tag, **data)),
        tag=tag,
    )


def _refresh_later(tag: Tag) -> Tag:
    """A rule tag's members follow its (new) rule once the worker has refreshed it."""
    if tag.is_rule:
        transaction.on_commit(partial(rule_tag_refresh_task, tag.pk))
    return tag


@role_required(LEADS)
@require_POST
def tag_refresh(request, pk: int):
    """Refresh a rule tag now (in the worker); its page then shows what was added and removed."""
    tag = tag_get(pk)
    if not tag.is_rule:
        raise Http404
    _refresh_later(tag)
    messages.success(request, _("The refresh was queued; reload the page to see what changed."))
    return redirect("tags:tag_edit", pk=tag.pk)


@role_required(LEADS)
@require_POST
def tag_remove(request, pk: int):
    tag_delete(tag=tag_get(pk), user=request.user)
    messages.success(request, _("The tag was deleted."))
    return redirect("tags:index")


# The profile's tag panel


def _panel(request, customer, *, error: str = "") -> HttpResponse:
    status = 400 if error else 200
    if is_htmx_partial(request):
        context = customer_tags_context(customer, error=error)
        return TemplateResponse(request, "tags/_customer_tags.html", context, status=status)
    if error:
        return TemplateResponse(request, "tags/error.html", {"error": error}, status=status)
    return redirect("customers:detail", pk=customer.pk)


@role_required(ANY_ROLE)
@require_POST
def customer_tag_add(request, pk: int):
    customer = customer_get(viewer_for(request.user), pk)
    form = TagPickForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer, error=" ".join(form.errors.get("tag", [])))
    try:
        tags_assign(
            customer_ids=[customer.pk],
            tag=form.cleaned_data["tag"],
            source=Source.MANUAL,
            user=request.user,
        )
    except DomainError as exc:
        return _panel(request, customer, error=exc.message)
    return _panel(request, customer)


@role_required(ANY_ROLE)
@require_POST
def customer_tag_remove(request, pk: int, tag_pk: int):
    customer = customer_get(viewer_for(request.user), pk)
    try:
        tags_remove(
            customer_ids=[customer.pk],
            tag=tag_get(tag_pk),
            source=Source.MANUAL,
            user=request.user,
        )
    except DomainError as exc:
        return _panel(request, customer, error=exc.message)
    return _panel(request, customer)


# Bulk tagging of the customer list's selection


@role_required(LEADS)
def bulk_tag(request):
    """The customer list's filters (its query string) choose the customers; GET shows how many,
    POST tags them. Filters that do not parse are refused rather than left out, so a typo never
    widens the selection."""
    viewer = viewer_for(request.user)
    filters_form = CustomerFilterForm(
        request.GET,
        stores=stores_visible_to(viewer),
        staff=staff_visible_to(viewer),
        channels=channel_list(),
    )
    form = BulkTagForm(request.POST if request.method == "POST" else None)
    context = {
        "form": form,
        "filters_form": filters_form,
        "count": None,
        "max_bulk": MAX_BULK,
        "tag_choices": [entry for entry in tag_catalogue() if entry.tags],
    }
    if not filters_form.is_valid():
        context["error"] = _("The customer filters were not understood; go back to the list.")
        return TemplateResponse(request, "tags/bulk.html", context, status=400)
    filters = customer_filters(filters_form.cleaned_data)
    try:
        selection = customer_search(viewer, filters).order_by()
        if request.method == "POST":
            ids = list(selection.values_list("pk", flat=True)[: MAX_BULK + 1])
            context["count"] = len(ids)
        else:
            context["count"] = selection.count()
    except DomainError as exc:
        context["error"] = exc.message
        return TemplateResponse(request, "tags/bulk.html", context, status=400)
    if context["count"] > MAX_BULK:
        context["error"] = _(
            "More than %(max)s customers match; narrow the filters to tag them in one go."
        ) % {"max": f"{MAX_BULK:,}"}
        status = 400 if form.is_bound else 200
        return TemplateResponse(request, "tags/bulk.html", context, status=status)
    if request.method != "POST":
        return TemplateResponse(request, "tags/bulk.html", context)
    if not form.is_valid():
        return TemplateResponse(request, "tags/bulk.html", context, status=400)
    tag, action = form.cleaned_data["tag"], form.cleaned_data["action"]
    service = tags_assign if action == "add" else tags_remove
    try:
        changed = service(customer_ids=ids, tag=tag, source=Source.MANUAL, user=request.user)
    except DomainError as exc:
        context["error"] = exc.message
        return TemplateResponse(request, "tags/bulk.html", context, status=400)
    if action == "add":
        message = _("Tag %(tag)s added to %(count)s customers.")
    else:
        message = _("Tag %(tag)s removed from %(count)s customers.")
    messages.success(request, message % {"tag": tag.name, "count": changed})
    return redirect(f"{request.path}?{request.GET.urlencode()}")
