"""Reads of the content library. Lists are one query each (categories and owners joined)."""

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from siyu.content.models import Material, Script, ScriptCategory
from siyu.org.models import Staff
from siyu.org.selectors import Viewer


def script_categories() -> QuerySet[ScriptCategory]:
    return ScriptCategory.objects.all()


def script_list(
    *, q: str = "", category: ScriptCategory | None = None, archived: bool = False
) -> QuerySet[Script]:
    scripts = Script.objects.filter(active=not archived).select_related("category", "material")
    if q:
        scripts = scripts.filter(Q(title__icontains=q) | Q(body__icontains=q))
    if category is not None:
        scripts = scripts.filter(category=category)
    return scripts


def script_get(pk: int) -> Script:
    return get_object_or_404(Script.objects.select_related("category", "material"), pk=pk)


def material_list(*, q: str = "", kind: str = "", status: str = "") -> QuerySet[Material]:
    materials = Material.objects.select_related("owner")
    if q:
        materials = materials.filter(
            Q(title__icontains=q) | Q(summary__icontains=q) | Q(tags__icontains=q)
        )
    if kind:
        materials = materials.filter(kind=kind)
    if status:
        materials = materials.filter(status=status)
    return materials


def material_get(pk: int) -> Material:
    return get_object_or_404(Material.objects.select_related("owner"), pk=pk)


def published_materials() -> QuerySet[Material]:
    return Material.objects.filter(status=Material.Status.PUBLISHED).order_by("title")


def staff_for(viewer: Viewer) -> Staff | None:
    """The viewer's staff record with its store, for script variables; None for a superuser
    without one."""
    if viewer.staff_id is None:
        return None
    return Staff.objects.select_related("store").filter(pk=viewer.staff_id).first()
