"""Reads over the computed RFM values and the saved segments."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone

from siyu.core.pagination import KeysetPage, keyset_page
from siyu.customers.models import Customer
from siyu.customers.selectors import customers_visible_to
from siyu.org.selectors import Viewer
from siyu.segments.dsl import SegmentError, compile_definition, segment_members
from siyu.segments.models import Segment, SegmentSnapshot
from siyu.segments.rfm import cumulative_sql


@dataclass(frozen=True)
class SuperUsers:
    share: float  # the share of monetary value asked for, 0–1
    customers: int  # the fewest customers that bring it
    buyers: int  # live customers with any monetary value
    threshold: Decimal | None  # monetary value of the smallest of those customers
    total: Decimal
    # (share of buyers, share of monetary value), biggest spenders first, from (0, 0) to (1, 1)
    curve: list[tuple[float, float]]


def super_users(
    *, share: float = 0.8, points: int = 100, customers: QuerySet[Customer] | None = None
) -> SuperUsers:
    """The smallest set of live customers bringing `share` of the RFM monetary value.

    Reads the values of the last rfm_recompute; one query, at most `points` + 1 rows back.
    `customers` narrows the base (e.g. to a viewer's scope); by default it is every customer.
    """
    basis_points = round(share * 10_000)
    scope, scope_params = "", ()
    if customers is not None:
        scope, scope_params = customers.order_by().values("pk").query.sql_with_params()
    sql = f"""
SELECT rn, cents, prev_cents + cents AS cum, buyers, total,
       CASE WHEN prev_cents * 10000 < %s * total AND (prev_cents + cents) * 10000 >= %s * total
            THEN 1 ELSE 0 END AS crossing
FROM ({cumulative_sql(scope)}) w
WHERE rn = buyers OR (rn * %s) / buyers > ((rn - 1) * %s) / buyers
   OR (prev_cents * 10000 < %s * total AND (prev_cents + cents) * 10000 >= %s * total)
ORDER BY rn
"""
    params = [basis_points, basis_points, *scope_params, points, points, basis_points, basis_points]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return SuperUsers(share, 0, 0, None, Decimal(0), [])
    buyers, total = int(rows[0][3]), int(rows[0][4])
    curve = [(0.0, 0.0)]
    customers, threshold = 0, None
    for rn, cents, cum, _, _, crossing in rows:
        if crossing:
            customers, threshold = int(rn), Decimal(int(cents)) / 100
        if (rn * points) // buyers > ((rn - 1) * points) // buyers or rn == buyers:
            curve.append((int(rn) / buyers, int(cum) / total))
    return SuperUsers(share, customers, buyers, threshold, Decimal(total) / 100, curve)


# ---------------------------------------------------------------------------- saved segments


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name")


def segment_get(pk) -> Segment:
    segment = Segment.objects.select_related("created_by").filter(pk=pk).first()
    if segment is None:
        raise Http404
    return segment


def segment_counts(segments: list[Segment], viewer: Viewer) -> dict[int, int | None]:
    """Members of each segment in the viewer's scope: one aggregate query for all of them.

    A definition that no longer compiles counts as None rather than failing the page.
    """
    now = timezone.now()
    counts: dict[int, int | None] = {segment.pk: None for segment in segments}
    aggregates = {}
    for segment in segments:
        try:
            aggregates[f"s{segment.pk}"] = Count(
                "pk", filter=compile_definition(segment.definition, as_of=now)
            )
        except SegmentError:
            continue
    if aggregates:
        row = customers_visible_to(viewer).aggregate(**aggregates)
        counts.update({int(key[1:]): value for key, value in row.items()})
    return counts


def segment_sample(definition, viewer: Viewer, *, size: int = 20) -> list[Customer]:
    """The newest `size` members in the viewer's scope; raises SegmentError if invalid."""
    members = segment_members(definition, viewer).select_related("owner", "store")
    return list(members.order_by("-pk")[:size])


def segment_member_page(
    segment: Segment, viewer: Viewer, *, after: int | None, before: int | None, size: int
) -> KeysetPage:
    """A keyset page of the segment's members in the viewer's scope, newest first."""
    members = segment_members(segment.definition, viewer).select_related(
        "owner", "store", "first_channel"
    )
    return keyset_page(members, after=after, before=before, size=size)


def segment_snapshots(segment: Segment, *, limit: int = 50) -> list[SegmentSnapshot]:
    return list(segment.snapshots.select_related("created_by").order_by("-created_at")[:limit])
