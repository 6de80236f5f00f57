"""Console pages of the content library: scripts and materials (everyone reads, leads edit),
a material's mobile preview, and the profile's script panel (anyone, within their scope)."""

import posixpath

from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import ANY_ROLE, LEADS, role_required
from siyu.content.formatting import render_script
from siyu.content.forms import (
    MaterialFilterForm,
    MaterialForm,
    ScriptCategoryForm,
    ScriptFilterForm,
    ScriptForm,
)
from siyu.content.selectors import (
    material_get,
    material_list,
    script_get,
    script_list,
    staff_for,
)
from siyu.content.services import (
    material_create,
    material_update,
    script_category_create,
    script_create,
    script_set_active,
    script_update,
    script_used,
)
from siyu.core.errors import DomainError
from siyu.customers.selectors import customer_get
from siyu.org.selectors import viewer_for

LIST_LIMIT = 200
PANEL_LIMIT = 20
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
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
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
        q=data.get("q", ""), kind=data.get("kind", ""), status=data.get("status", "")
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
    return TemplateResponse(request, "content/preview.html", {"material": material_get(pk)})


# The profile's script panel


@role_required(ANY_ROLE)
def customer_scripts(request, pk: int):
    """Scripts personalised for one customer the viewer may see (htmx partial)."""
    viewer = viewer_for(request.user)
    customer = customer_get(viewer, pk)
    form = ScriptFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    staff = staff_for(viewer)
    scripts = script_list(q=data.get("q", ""), category=data.get("category"))[:PANEL_LIMIT]
    rendered = [
        (s, render_script(s.body, customer=customer, staff=staff, material=s.material))
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
