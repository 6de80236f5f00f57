"""Reads over the computed RFM values."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from siyu.customers.models import Customer
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
