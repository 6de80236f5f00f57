"""Console pages of the content library: scripts and materials (everyone reads, leads edit),
a material's mobile preview, its views and share panel, and the profile's script panel
(anyone, within their scope)."""

import posixpath

import segno
from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import ANY_ROLE, LEADS, role_required
from siyu.console.htmx import for_htmx, is_htmx_partial
from siyu.content.formatting import render_script
from siyu.content.forms import (
    CaseMaterialForm,
    MaterialFilterForm,
    MaterialForm,
    ScriptCategoryForm,
    ScriptFilterForm,
    ScriptForm,
    ShareForm,
    ViewPageForm,
)
from siyu.content.models import TrackedLink
from siyu.content.selectors import (
    CASE_ORDER_STATUSES,
    case_order_get,
    case_orders_for,
    case_prefill,
    material_get,
    material_links_visible,
    material_list,
    material_stats,
    material_views_visible,
    material_visible,
    script_get,
    script_list,
    staff_for,
)
from siyu.content.services import (
    case_material_create,
    material_create,
    material_update,
    script_category_create,
    script_create,
    script_set_active,
    script_update,
    script_used,
    tracked_link_for,
    tracked_links_for_customer,
)
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError, form_add_error
from siyu.core.pagination import keyset_page
from siyu.customers.selectors import CustomerFilters, customer_get, customer_search
from siyu.org.selectors import viewer_for

LIST_LIMIT = 200
PANEL_LIMIT = 20
SHARE_SEARCH_LIMIT = 10
LINKS_LIMIT = 50
UPLOAD_PREFIX = "content/"
SCRIPT_CARD_FIELDS = ("miniprogram_appid", "miniprogram_path", "miniprogram_title")


def _save(request, form, template: str, context: dict, save, done: str) -> HttpResponse:
    """Validate, call the service and go to `done`; errors re-render the form with 400."""
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
                return redirect(done)
    return TemplateResponse(request, template, {"form": form, **context}, status=status)


def _is_lead(request) -> bool:
    return viewer_for(request.user).role in LEADS


# Scripts


@role_required(ANY_ROLE)
def script_index(request):
    form = ScriptFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    archived = request.GET.get("archived") == "1" and _is_lead(request)
    scripts = script_list(q=data.get("q", ""), category=data.get("category"), archived=archived)
    context = {
        "form": form,
        "scripts": scripts[:LIST_LIMIT],
        "limit": LIST_LIMIT,
        "archived": archived,
        "can_edit": _is_lead(request),
    }
    return TemplateResponse(request, "content/scripts.html", context)


@role_required(LEADS)
def script_new(request):
    form = ScriptForm(request.POST or None, request.FILES or None)
    staff = staff_for(viewer_for(request.user))
    return _save(
        request,
        form,
        "content/form.html",
        {"title": _("New script"), "back": "content:scripts"},
        lambda data: script_create(created_by=staff, **data),
        "content:scripts",
    )


@role_required(LEADS)
def script_edit(request, pk: int):
    script = script_get(pk)
    fields = ("category", "title", "body", "material", *SCRIPT_CARD_FIELDS)
    form = ScriptForm(
        request.POST or None,
        request.FILES or None,
        initial={f: getattr(script, f) for f in fields},
    )
    return _save(
        request,
        form,
        "content/form.html",
        {"title": _("Edit script"), "back": "content:scripts", "current_image": script.image},
        lambda data: script_update(script=script, **data),
        "content:scripts",
    )


@role_required(LEADS)
@require_POST
def script_archive(request, pk: int):
    script = script_get(pk)
    script_set_active(script=script, active=not script.active)
    messages.success(
        request, _("The script was archived.") if script.active else _("The script was restored.")
    )
    return redirect("content:scripts")


@role_required(LEADS)
def category_new(request):
    form = ScriptCategoryForm(request.POST or None)
    return _save(
        request,
        form,
        "content/form.html",
        {"title": _("New script category"), "back": "content:scripts"},
        lambda data: script_category_create(**data),
        "content:scripts",
    )


# Materials


@role_required(ANY_ROLE)
def material_index(request):
    form = MaterialFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    materials = material_list(
        q=data.get("q", ""),
        kind=data.get("kind", ""),
        status=data.get("status", ""),
        viewer=viewer_for(request.user),
    )
    context = {
        "form": form,
        "materials": materials[:LIST_LIMIT],
        "limit": LIST_LIMIT,
        "can_edit": _is_lead(request),
    }
    return TemplateResponse(request, "content/materials.html", context)


@role_required(LEADS)
def material_new(request):
    form = MaterialForm(request.POST or None, request.FILES or None)
    owner = staff_for(viewer_for(request.user))
    return _save(
        request,
        form,
        "content/form.html",
        {"title": _("New material"), "back": "content:materials"},
        lambda data: material_create(owner=owner, **data),
        "content:materials",
    )


@role_required(LEADS)
def material_edit(request, pk: int):
    material = material_get(pk)
    fields = ("kind", "title", "summary", "body", "url", "tags", "status")
    form = MaterialForm(
        request.POST or None,
        request.FILES or None,
        initial={f: getattr(material, f) for f in fields},
    )
    return _save(
        request,
        form,
        "content/form.html",
        {
            "title": _("Edit material"),
            "back": "content:materials",
            "current_image": material.image,
            "current_file": material.file,
        },
        lambda data: material_update(material=material, owner=material.owner, **data),
        "content:materials",
    )


@role_required(ANY_ROLE)
def upload(request, name: str):
    """An uploaded image or file, for logged-in staff (customer-facing links come later).
    Only names under content/ are served: normalised first, so content/../ cannot reach other
    files in MEDIA_ROOT; the storage refuses paths that leave MEDIA_ROOT."""
    name = posixpath.normpath(name)
    if not name.startswith(UPLOAD_PREFIX) or not default_storage.exists(name):
        raise Http404
    return FileResponse(default_storage.open(name), filename=name.rsplit("/", 1)[-1])


@role_required(ANY_ROLE)
def material_preview(request, pk: int):
    material = material_visible(viewer_for(request.user), pk)
    return TemplateResponse(request, "content/preview.html", {"material": material})


def link_url(request, link: TrackedLink) -> str:
    """The absolute public address of a link, as customers will open it."""
    return request.build_absolute_uri(f"/m/{link.code}")


@role_required(ANY_ROLE)
@for_htmx(partial="content/_material_views.html")
def material_detail(request, pk: int):
    """A material's opens (scoped to the links the viewer may see), its stats per sharer, the
    links shared so far and the share panel. A fixed number of queries."""
    viewer = viewer_for(request.user)
    material = material_visible(viewer, pk)
    cursor = ViewPageForm(request.GET)
    data = cursor.cleaned_data if cursor.is_valid() else {}
    views = material_views_visible(viewer, material)
    page = keyset_page(
        views.select_related("customer", "link__staff", "link__channel"),
        after=data.get("after"),
        before=data.get("before"),
        size=settings.SIYU_PAGE_SIZE,
    )
    context = {
        "material": material,
        "page": page,
        "stats": material_stats(views),
        "links": material_links_visible(viewer, material)[:LINKS_LIMIT],
        "share_form": ShareForm(),
        "shared": _shared_link(request, viewer, material),
    }
    return TemplateResponse(request, "content/material_detail.html", context)


def _shared_link(request, viewer, material) -> dict | None:
    """After a share without htmx, the detail page shows the new link again (by its code)."""
    code = request.GET.get("shared", "")
    if not code:
        return None
    link = material_links_visible(viewer, material).filter(code=code).first()
    return _share_result(request, link) if link else None


def _share_result(request, link: TrackedLink) -> dict:
    url = link_url(request, link)
    return {"link": link, "url": url, "qr": segno.make(url, error="m").svg_inline(scale=4)}


@role_required(ANY_ROLE)
def material_share(request, pk: int):
    """GET ?q= finds customers in the viewer's scope to share with (htmx partial); POST a
    customer or a channel gets the tracked link with its QR code."""
    viewer = viewer_for(request.user)
    material = material_visible(viewer, pk)
    if request.method == "GET":
        q = request.GET.get("q", "").strip()[:50]
        customers = []
        if q:
            try:
                customers = customer_search(viewer, CustomerFilters(q=q))[:SHARE_SEARCH_LIMIT]
            except DomainError:
                customers = []
        context = {"material": material, "customers": customers, "q": q}
        return TemplateResponse(request, "content/_share_customers.html", context)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "content/_share_result.html",
            {"material": material, "errors": form.errors.get("__all__") or form.errors},
            status=400,
        )
    customer = (
        customer_get(viewer, form.cleaned_data["customer"])
        if form.cleaned_data["customer"]
        else None
    )
    try:
        link = tracked_link_for(
            material=material,
            staff=staff_for(viewer),
            customer=customer,
            channel=form.cleaned_data["channel"],
        )
    except DomainError as exc:
        return TemplateResponse(
            request,
            "content/_share_result.html",
            {"material": material, "errors": [exc.message]},
            status=400,
        )
    if not is_htmx_partial(request):
        return redirect(
            f"{reverse('content:material_detail', args=[material.pk])}?shared={link.code}"
        )
    return TemplateResponse(
        request,
        "content/_share_result.html",
        {"material": material, **_share_result(request, link)},
    )


# The profile's script panel


@role_required(ANY_ROLE)
def customer_scripts(request, pk: int):
    """Scripts personalised for one customer the viewer may see (htmx partial)."""
    viewer = viewer_for(request.user)
    customer = customer_get(viewer, pk)
    form = ScriptFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    staff = staff_for(viewer)
    scripts = list(script_list(q=data.get("q", ""), category=data.get("category"))[:PANEL_LIMIT])
    links = tracked_links_for_customer(
        materials={s.material for s in scripts if s.material}, staff=staff, customer=customer
    )
    rendered = [
        (
            s,
            render_script(
                s.body,
                customer=customer,
                staff=staff,
                material=s.material,
                material_link=link_url(request, links[s.material_id])
                if s.material_id in links
                else "",
            ),
        )
        for s in scripts
    ]
    context = {
        "customer": customer,
        "form": form,
        "rendered": rendered,
    }
    return TemplateResponse(request, "content/_customer_scripts.html", context)


@role_required(ANY_ROLE)
@require_POST
def script_copied(request, pk: int):
    """The profile panel's copy button counts a use; 404 for an unknown or archived script."""
    if not script_used(script_id=pk):
        return HttpResponse(status=404)
    return HttpResponse(status=204)


# Case materials (案例素材)


@role_required(LEADS)
def customer_case_orders(request, pk: int):
    """The profile's panel of delivered orders, each with "turn into case" or its case."""
    customer = customer_get(viewer_for(request.user), pk)
    orders = case_orders_for(customer_id=customer.pk)
    context = {"customer": customer, "orders": orders}
    return TemplateResponse(request, "content/_case_orders.html", context)


@role_required(LEADS)
def case_new(request, order_id: int):
    """A prefilled form that turns a delivered order into a draft case material."""
    viewer = viewer_for(request.user)
    order = case_order_get(viewer=viewer, order_id=order_id)
    initial = {"title": _("Customer story: %(order)s") % {"order": order.external_id}}
    form = CaseMaterialForm(
        request.POST or None, request.FILES or None, initial={**initial, **case_prefill(order)}
    )
    context = {"form": form, "order": order, "title": _("Turn an order into a case")}
    if order.status not in CASE_ORDER_STATUSES:
        context["error"] = _("Only a completed or partially refunded order can become a case.")
        return TemplateResponse(request, "content/case_form.html", context, status=400)
    if request.method != "POST":
        return TemplateResponse(request, "content/case_form.html", context)
    if form.is_valid():
        try:
            material = case_material_create(
                order=order,
                owner=staff_for(viewer),
                actor=request.user,
                ip=client_ip(request),
                **form.cleaned_data,
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Draft case saved; review it and publish it."))
            return redirect("content:material_edit", pk=material.pk)
    return TemplateResponse(request, "content/case_form.html", context, status=400)
