"""Reads of the content library. Lists are one query each (categories and owners joined)."""

import time
from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import Avg, Count, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404

from siyu.commerce.models import Order
from siyu.content.models import Material, MaterialView, Script, ScriptCategory, TrackedLink
from siyu.core.masking import mask_name
from siyu.customers.selectors import customers_visible_to
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


# The public page's one query, written once: compiling the equivalent ORM query took about
# 1.5 ms of CPU per request, several times the query itself (benchmarks/radar.py).
_LINK_COLUMNS = {"id", "code", "staff", "customer", "material"}
_MATERIAL_COLUMNS = {"id", "kind", "title", "summary", "body", "image", "file", "url", "status"}


def _fields(model, names: set[str]) -> list:
    # In the model's field order, which Model.from_db expects the values in.
    return [f for f in model._meta.concrete_fields if f.name in names]


@cache
def _link_page_sql() -> str:
    q = connection.ops.quote_name
    link, material = TrackedLink._meta, Material._meta
    columns = [f"l.{q(f.column)}" for f in _fields(TrackedLink, _LINK_COLUMNS)] + [
        f"m.{q(f.column)}" for f in _fields(Material, _MATERIAL_COLUMNS)
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {q(link.db_table)} l "
        f"JOIN {q(material.db_table)} m ON m.{q('id')} = l.{q(link.get_field('material').column)} "
        f"WHERE l.{q(link.get_field('code').column)} = %s"
    )


# Each web process keeps the links it served for a few seconds: a link shared into a group
# chat is opened by many phones at once, and the database round trip was the largest part of
# the page (benchmarks/radar.py). So a material withdrawn or edited shows within this delay.
LINK_CACHE_SECONDS = 10.0
LINK_CACHE_SIZE = 4096
_link_cache: dict[str, tuple[float, TrackedLink]] = {}


def tracked_link_page(code: str) -> TrackedLink | None:
    """The link with what its public page shows (`link.material`): one query, or none while
    this process served it in the last LINK_CACHE_SECONDS. The other fields are deferred;
    callers must not change the instance (it is shared between requests)."""
    now = time.monotonic()
    hit = _link_cache.get(code)
    if hit is not None and hit[0] > now:
        return hit[1]
    with connection.cursor() as cursor:
        cursor.execute(_link_page_sql(), [code])
        row = cursor.fetchone()
    if row is None:
        return None  # not kept: a link created a moment later must open at once
    n = len(_LINK_COLUMNS)
    link_fields = [f.attname for f in _fields(TrackedLink, _LINK_COLUMNS)]
    material_fields = [f.attname for f in _fields(Material, _MATERIAL_COLUMNS)]
    link = TrackedLink.from_db(connection.alias, link_fields, row[:n])
    link.material = Material.from_db(connection.alias, material_fields, row[n:])
    if len(_link_cache) >= LINK_CACHE_SIZE:
        _link_cache.clear()  # crude, but bounded and rare
    _link_cache[code] = (now + LINK_CACHE_SECONDS, link)
    return link


def tracked_link_cache_clear() -> None:
    """Forget this process's links (after a material changes here; others expire)."""
    _link_cache.clear()


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


# Case materials (案例素材)

# Orders that reached the customer: delivered, or delivered and partly refunded after sale.
CASE_ORDER_STATUSES = (Order.Status.COMPLETED, Order.Status.PARTIALLY_REFUNDED)
CASE_ORDERS_LIMIT = 20


def case_orders_for(*, customer_id: int) -> list[Order]:
    """The customer's delivered orders, newest first, each with its lines and the ids of the
    cases already made from it (`case_ids`). Three queries."""
    orders = list(
        Order.objects.filter(customer_id=customer_id, status__in=CASE_ORDER_STATUSES)
        .select_related("channel")
        .prefetch_related("items")
        .order_by(Coalesce("paid_at", "placed_at", "created_at").desc(), "-pk")[:CASE_ORDERS_LIMIT]
    )
    cases: dict[int, list[int]] = {}
    made = Material.objects.filter(source_order__in=[o.pk for o in orders]).order_by("pk")
    for order_id, material_id in made.values_list("source_order_id", "pk"):
        cases.setdefault(order_id, []).append(material_id)
    for order in orders:
        order.case_ids = cases.get(order.pk, [])
    return orders


def case_order_get(*, viewer: Viewer, order_id: int) -> Order:
    """An order of a customer the viewer may see, with its lines; Http404 otherwise, so an
    out-of-scope order looks like a missing one."""
    visible = customers_visible_to(viewer).values("pk")
    return get_object_or_404(
        Order.objects.select_related("customer", "channel").prefetch_related("items"),
        pk=order_id,
        customer_id__in=visible,
    )


def case_prefill(order: Order) -> dict:
    """What the case form starts with: the customer's masked name, the products, the amount
    kept after refunds."""
    products = "、".join(
        f"{item.title or item.sku or item.product_ref} ×{item.quantity}"
        for item in order.items.all()
    )
    return {
        "customer_label": mask_name(order.customer.name) if order.customer else "",
        "products": products,
        "amount": order.amount - order.refund_amount,
    }
