"""Reads of the content library. Lists are one query each (categories and owners joined)."""

from dataclasses import dataclass

from django.db.models import Avg, Count, F, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from siyu.content.models import Material, MaterialView, Script, ScriptCategory, TrackedLink
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


def material_list(
    *, q: str = "", kind: str = "", status: str = "", viewer: Viewer | None = None
) -> QuerySet[Material]:
    materials = Material.objects.select_related("owner")
    if viewer is not None and not _may_see_drafts(viewer):
        # Staff see drafts of their own only; the rest are work in progress of the leads.
        own = Q(owner_id=viewer.staff_id) if viewer.staff_id else Q(pk__in=[])
        materials = materials.filter(~Q(status=Material.Status.DRAFT) | own)
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


# Tracked links


def tracked_link_page(code: str) -> TrackedLink | None:
    """The link with what its public page shows, in one query (the page's hot path)."""
    return (
        TrackedLink.objects.select_related("material")
        .only(
            "id",
            "code",
            "staff",
            "customer",
            "material__id",
            "material__kind",
            "material__title",
            "material__summary",
            "material__body",
            "material__image",
            "material__file",
            "material__url",
            "material__status",
            "material__updated_at",
        )
        .filter(code=code)
        .first()
    )


def material_visible(viewer: Viewer, pk: int) -> Material:
    """The material if the viewer may open it: drafts only for leads and their owner.
    Raises Http404 otherwise, like an unknown id."""
    material = material_get(pk)
    if material.status == Material.Status.DRAFT and not _may_see_drafts(viewer, material):
        raise Http404
    return material


def _may_see_drafts(viewer: Viewer, material: Material | None = None) -> bool:
    if viewer.is_admin or viewer.is_manager:
        return True
    return (
        material is not None
        and viewer.staff_id is not None
        and (material.owner_id == viewer.staff_id)
    )


def material_views_visible(viewer: Viewer, material: Material) -> QuerySet[MaterialView]:
    """Opens of a material through links the viewer may see: an admin every link, a manager
    those shared by their store's staff, staff their own."""
    views = MaterialView.objects.filter(material=material)
    if viewer.is_admin:
        return views
    if viewer.is_manager and viewer.store_id:
        return views.filter(link__staff__store_id=viewer.store_id)
    if viewer.staff_id:
        return views.filter(link__staff_id=viewer.staff_id)
    return views.none()


@dataclass(frozen=True)
class StaffStats:
    staff_id: int | None
    name: str
    opens: int
    customers: int
    avg_seconds: int


@dataclass(frozen=True)
class MaterialStats:
    opens: int
    customers: int
    avg_seconds: int
    per_staff: list[StaffStats]


def material_stats(views: QuerySet[MaterialView]) -> MaterialStats:
    """Opens, distinct customers and average reading time, overall and per sharer: two
    grouped queries whatever the number of views."""
    measures = {
        "opens": Count("pk"),
        "customers": Count("customer", distinct=True),
        "avg": Avg("seconds"),
    }
    total = views.order_by().aggregate(**measures)
    rows = (
        views.order_by()
        .values("link__staff_id", "link__staff__name")
        .annotate(**measures)
        .order_by("-opens", "link__staff__name")
    )
    return MaterialStats(
        opens=total["opens"],
        customers=total["customers"],
        avg_seconds=round(total["avg"] or 0),
        per_staff=[
            StaffStats(
                r["link__staff_id"],
                r["link__staff__name"] or "",
                r["opens"],
                r["customers"],
                round(r["avg"] or 0),
            )
            for r in rows
        ],
    )


def material_links_visible(viewer: Viewer, material: Material) -> QuerySet[TrackedLink]:
    """The material's links the viewer may see (same rule as its views), most recently
    opened first, with their denormalised counters."""
    links = TrackedLink.objects.filter(material=material)
    if viewer.is_manager and viewer.store_id and not viewer.is_admin:
        links = links.filter(staff__store_id=viewer.store_id)
    elif not viewer.is_admin:
        links = links.filter(staff_id=viewer.staff_id) if viewer.staff_id else links.none()
    return links.select_related("staff", "customer", "channel").order_by(
        F("last_viewed_at").desc(nulls_last=True), "-pk"
    )
