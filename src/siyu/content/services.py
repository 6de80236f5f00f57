"""Writes of the content library: script categories, scripts and materials.

Every rule is checked here (the forms only parse): script text may use known variables only,
article bodies are sanitised before they are stored.
"""

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from siyu.content.formatting import VARIABLES, braced, unknown_variables
from siyu.content.models import Material, Script, ScriptCategory
from siyu.content.sanitise import sanitise_html
from siyu.core.errors import DomainError
from siyu.org.models import Staff


def _required(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise DomainError(_("This field is required."), field=field)
    if len(value) > max_length:
        raise DomainError(_("At most %(n)s characters.") % {"n": max_length}, field=field)
    return value


@transaction.atomic
def script_category_create(*, name: str, order: int | None = 0) -> ScriptCategory:
    """A brand's own category. Raises DomainError for a missing or taken name."""
    name = _required(name, "name", 50)
    if ScriptCategory.objects.filter(name=name).exists():
        raise DomainError(_("A category with this name exists already."), field="name")
    return ScriptCategory.objects.create(name=name, order=max(order or 0, 0))


def _clean_script_body(body: str) -> str:
    body = _required(body, "body", 2000)
    unknown = unknown_variables(body)
    if unknown:
        raise DomainError(
            _("Unknown variables: %(names)s. Known variables: %(known)s.")
            % {
                "names": braced(unknown),
                "known": braced(VARIABLES),
            },
            field="body",
        )
    return body


def _script_fields(data: dict) -> dict:
    material = data.get("material")
    if material is not None and material.status != Material.Status.PUBLISHED:
        raise DomainError(_("Only a published material can be attached."), field="material")
    return {
        "category": data["category"],
        "title": _required(data.get("title"), "title", 100),
        "body": _clean_script_body(data.get("body")),
        "material": material,
        "miniprogram_appid": (data.get("miniprogram_appid") or "").strip(),
        "miniprogram_path": (data.get("miniprogram_path") or "").strip(),
        "miniprogram_title": (data.get("miniprogram_title") or "").strip(),
    }


@transaction.atomic
def script_create(*, created_by: Staff | None, image: UploadedFile | None = None, **data) -> Script:
    """Raises DomainError for a missing title or text, an unknown variable in the text, or an
    unpublished material."""
    script = Script(created_by=created_by, **_script_fields(data))
    if image:
        script.image = image
    script.save()
    return script


@transaction.atomic
def script_update(*, script: Script, image: UploadedFile | None = None, **data) -> Script:
    """Raises DomainError like script_create. A new image replaces the old one."""
    for field, value in _script_fields(data).items():
        setattr(script, field, value)
    if image:
        script.image = image
    script.save()
    return script


def script_set_active(*, script: Script, active: bool) -> None:
    Script.objects.filter(pk=script.pk).update(active=active)


def script_used(*, script_id: int) -> int:
    """Count one use (a copy from a profile) in one UPDATE, safe under concurrent copies.
    Returns 0 for an unknown or archived script."""
    return Script.objects.filter(pk=script_id, active=True).update(usage_count=F("usage_count") + 1)


def _material_fields(data: dict, *, has_image: bool, has_file: bool) -> dict:
    kind = data.get("kind")
    if kind not in Material.Kind.values:
        raise DomainError(_("Unknown kind."), field="kind")
    status = data.get("status") or Material.Status.DRAFT
    if status not in Material.Status.values:
        raise DomainError(_("Unknown status."), field="status")
    body = sanitise_html(data.get("body") or "")
    url = (data.get("url") or "").strip()
    if kind == Material.Kind.ARTICLE and not body:
        raise DomainError(_("An article needs a body."), field="body")
    if kind == Material.Kind.POSTER and not has_image:
        raise DomainError(_("A poster needs an image."), field="image")
    if kind == Material.Kind.PRODUCT and not url:
        raise DomainError(_("A product page needs its link."), field="url")
    if kind == Material.Kind.FILE and not has_file:
        raise DomainError(_("Upload the file."), field="file")
    tags = ", ".join(t for t in (s.strip() for s in (data.get("tags") or "").split(",")) if t)
    if len(tags) > 200:
        raise DomainError(_("At most %(n)s characters.") % {"n": 200}, field="tags")
    return {
        "kind": kind,
        "title": _required(data.get("title"), "title", 100),
        "summary": (data.get("summary") or "").strip()[:300],
        "body": body,
        "url": url,
        "tags": tags,
        "status": status,
        "owner": data.get("owner"),
    }


@transaction.atomic
def material_create(
    *, image: UploadedFile | None = None, file: UploadedFile | None = None, **data
) -> Material:
    """Raises DomainError for a missing title or the piece its kind needs (an article's body, a
    poster's image, a product's link, a file). The body is stored sanitised."""
    material = Material(**_material_fields(data, has_image=bool(image), has_file=bool(file)))
    if image:
        material.image = image
    if file:
        material.file = file
    material.save()
    return material


@transaction.atomic
def material_update(
    *,
    material: Material,
    image: UploadedFile | None = None,
    file: UploadedFile | None = None,
    **data,
) -> Material:
    """Raises DomainError like material_create; uploads left empty keep the current ones."""
    fields = _material_fields(
        data, has_image=bool(image or material.image), has_file=bool(file or material.file)
    )
    for field, value in fields.items():
        setattr(material, field, value)
    if image:
        material.image = image
    if file:
        material.file = file
    material.save()
    return material
