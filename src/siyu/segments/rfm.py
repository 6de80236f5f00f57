"""RFM: recency, frequency and monetary value per customer, scored 1–5 and named.

Definitions (docs/rfm.md has the same, for people who do not read code):

* A **paid order** has status paid, shipped, completed or partially_refunded, is not refunded
  in full (refund_amount < amount, or no refund at all), and has a paid time: ``paid_at``, or
  ``placed_at`` when the platform exported none. Orders paid after ``as_of`` are ignored.
* **Recency** – whole days (24 h) from the last paid order to ``as_of``. The customer row keeps
  the time of that order (``rfm_last_paid_at``), not the days, so that a daily recompute
  rewrites only the customers whose values or scores changed.
* **Frequency** – paid orders in the window ``[as_of - SIYU_RFM_WINDOW_DAYS, as_of]``; the edge
  is inclusive: an order paid exactly ``SIYU_RFM_WINDOW_DAYS`` days ago counts.
* **Monetary** – the amount of those orders net of their refunds.

Only live customers with at least one paid order are scored; the others get NULL scores and
a blank group. Scores come from the RfmScheme: **quintiles** of the scored customers (R: fewer
days = higher) or the brand's **thresholds**. Quintiles are ``1 + 5 * (rank - 1) / n`` with
RANK() over the value: for distinct values this is exactly NTILE(5), and customers with equal
values always get the same score (NTILE would split them arbitrarily at a bucket edge).

**Named groups** follow the common 11-segment RFM map by R and FM = round((F + M) / 2),
halves rounded up:

====  ===============  ===================  ===================  =========  ================
R     FM 1             FM 2                 FM 3                 FM 4       FM 5
====  ===============  ===================  ===================  =========  ================
5     new_customers    potential_loyalists  potential_loyalists  champions  champions
4     promising        potential_loyalists  potential_loyalists  loyal      loyal
3     about_to_sleep   about_to_sleep       need_attention       loyal      loyal
2     hibernating      hibernating          at_risk              at_risk    cannot_lose_them
1     lost             hibernating          at_risk              at_risk    cannot_lose_them
====  ===============  ===================  ===================  =========  ================
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from siyu.commerce.models import Order
from siyu.customers.models import Customer
from siyu.segments.models import DIMENSIONS, RfmScheme

Group = Customer.RfmGroup
PAID_STATUSES = (
    Order.Status.PAID,
    Order.Status.SHIPPED,
    Order.Status.COMPLETED,
    Order.Status.PARTIALLY_REFUNDED,
)

# GRID[r][fm - 1]: the table of the module docstring.
GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (
        Group.NEW_CUSTOMERS,
        Group.POTENTIAL_LOYALISTS,
        Group.POTENTIAL_LOYALISTS,
        Group.CHAMPIONS,
        Group.CHAMPIONS,
    ),
    4: (
        Group.PROMISING,
        Group.POTENTIAL_LOYALISTS,
        Group.POTENTIAL_LOYALISTS,
        Group.LOYAL,
        Group.LOYAL,
    ),
    3: (
        Group.ABOUT_TO_SLEEP,
        Group.ABOUT_TO_SLEEP,
        Group.NEED_ATTENTION,
        Group.LOYAL,
        Group.LOYAL,
    ),
    2: (
        Group.HIBERNATING,
        Group.HIBERNATING,
        Group.AT_RISK,
        Group.AT_RISK,
        Group.CANNOT_LOSE_THEM,
    ),
    1: (Group.LOST, Group.HIBERNATING, Group.AT_RISK, Group.AT_RISK, Group.CANNOT_LOSE_THEM),
}


def rfm_group_of(r: int | None, f: int | None, m: int | None) -> str:
    """The named group of an (R, F, M) score; blank without scores."""
    if r is None or f is None or m is None:
        return ""
    return GRID[r][(f + m + 1) // 2 - 1]


@dataclass(frozen=True)
class Sql:
    text: str
    params: list


def paid_orders_sql(*, as_of: datetime) -> tuple[str, str, list]:
    """(FROM … WHERE of the paid orders as alias `o`, the paid-time expression, params)."""
    order = Order._meta.db_table
    statuses = ", ".join(f"'{status}'" for status in PAID_STATUSES)
    paid_time = "COALESCE(o.paid_at, o.placed_at)"
    sql = (
        f"FROM {order} o "
        f"WHERE o.customer_id IS NOT NULL AND o.status IN ({statuses}) "
        f"AND (o.refund_amount = 0 OR o.refund_amount < o.amount) "
        f"AND {paid_time} <= %s"
    )
    return sql, paid_time, [as_of]


def days_between_sql(vendor: str, later: str, earlier: str) -> str:
    """Whole days (floor of elapsed 24 h) from `earlier` to `later`, as SQL."""
    if vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400) AS INTEGER)"
    return (
        f"((CAST(strftime('%%s', {later}) AS INTEGER) "
        f"- CAST(strftime('%%s', {earlier}) AS INTEGER)) / 86400)"
    )


def _score_sql(scheme: RfmScheme, dim: str, column: str) -> Sql:
    if scheme.mode == RfmScheme.Mode.THRESHOLDS:
        # Plain numbers: the SQLite driver would bind a Decimal as text, which sorts after all
        # numbers.
        cuts = [int(x) if float(x).is_integer() else float(x) for x in scheme.thresholds[dim]]
        if dim == "r":  # days: at most the first cut point scores 5
            whens = " ".join(f"WHEN {column} <= %s THEN {5 - i}" for i in range(4))
            return Sql(f"CASE {whens} ELSE 1 END", cuts)
        whens = " ".join(f"WHEN {column} >= %s THEN {5 - i}" for i in range(4))
        return Sql(f"CASE {whens} ELSE 1 END", cuts[::-1])
    direction = "DESC" if dim == "r" else "ASC"
    return Sql(
        f"(1 + (5 * (RANK() OVER (ORDER BY {column} {direction}) - 1)) / COUNT(*) OVER ())", []
    )


def _group_case_sql() -> str:
    whens = " ".join(
        f"WHEN {r * 10 + fm} THEN '{group}'"
        for r, row in GRID.items()
        for fm, group in enumerate(row, start=1)
    )
    return f"CASE r * 10 + (f + m + 1) / 2 {whens} END"


SCORED = "segments_rfm_scored"  # a temporary table, one row per scored customer


def rfm_scored_sql(
    vendor: str, *, as_of: datetime, window_start: datetime, scheme: RfmScheme
) -> Sql:
    """CREATE TEMP TABLE of every live buyer's values, scores and group."""
    customer = Customer._meta.db_table
    orders, paid_time, params = paid_orders_sql(as_of=as_of)
    recency = days_between_sql(vendor, "%s", f"MAX({paid_time})")
    net = "o.amount - o.refund_amount"
    monetary = f"SUM(CASE WHEN {paid_time} >= %s THEN {net} ELSE 0 END)"
    if vendor != "postgresql":
        monetary = f"ROUND({monetary}, 2)"  # SQLite sums decimals as floats
    columns = ("days", "n", "money")
    scores = [_score_sql(scheme, d, c) for d, c in zip(DIMENSIONS, columns, strict=True)]
    text = f"""
CREATE TEMPORARY TABLE {SCORED} AS
WITH paid AS (
    SELECT o.customer_id AS customer_id,
           MAX({paid_time}) AS last_paid,
           {recency} AS days,
           SUM(CASE WHEN {paid_time} >= %s THEN 1 ELSE 0 END) AS n,
           {monetary} AS money
    {orders}
    GROUP BY o.customer_id
),
scored AS (
    SELECT customer_id, last_paid, days, n, money,
           {scores[0].text} AS r, {scores[1].text} AS f, {scores[2].text} AS m
    FROM paid
    -- after grouping: one probe per buyer rather than per order
    WHERE EXISTS (SELECT 1 FROM {customer} live
                  WHERE live.id = paid.customer_id AND live.merged_into_id IS NULL)
)
SELECT scored.*, {_group_case_sql()} AS grp FROM scored
"""
    params = [
        as_of,  # recency
        window_start,  # frequency
        window_start,  # monetary
        *params,  # paid orders
        *scores[0].params,
        *scores[1].params,
        *scores[2].params,
    ]
    return Sql(text, params)


def rfm_write_sql(vendor: str) -> list[Sql]:
    """Write the scored values back, then reset everyone scored before who is not any more.

    Only rows whose values differ are written: on a quiet day most buyers keep their scores,
    and rewriting the wide, heavily indexed customer row of each would dominate the run.
    """
    customer = Customer._meta.db_table
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    pairs = (
        ("rfm_last_paid_at", "last_paid"),
        ("rfm_frequency", "n"),
        ("rfm_monetary", "money"),
        ("rfm_r", "r"),
        ("rfm_f", "f"),
        ("rfm_m", "m"),
        ("rfm_group", "grp"),
    )
    sets = ", ".join(f"{column} = s.{value}" for column, value in pairs)
    changed = " OR ".join(f"{customer}.{column} {distinct} s.{value}" for column, value in pairs)
    return [
        Sql(
            f"UPDATE {customer} SET {sets} "
            f"FROM {SCORED} s WHERE {customer}.id = s.customer_id AND ({changed})",
            [],
        ),
        # Every scored customer has an R score, so it marks who was scored before.
        Sql(
            f"""
UPDATE {customer} SET
    rfm_last_paid_at = NULL, rfm_frequency = 0, rfm_monetary = 0,
    rfm_r = NULL, rfm_f = NULL, rfm_m = NULL, rfm_group = ''
WHERE rfm_r IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {SCORED} s WHERE s.customer_id = {customer}.id)
""",
            [],
        ),
    ]


SUPER = "segments_super_chosen"  # a temporary table of the customers to flag


def temp_index_sql(vendor: str, table: str, column: str) -> list[Sql]:
    """An index on a temporary table's customer key, and statistics on PostgreSQL.

    The joins and anti-joins with the customer table then stay hash joins or index probes even
    when the customer table's own statistics are stale (right after a large import): without
    them PostgreSQL planned them as a scan of the whole temporary table per customer.
    """
    sqls = [Sql(f"CREATE INDEX {table}_key ON {table} ({column})", [])]
    if vendor == "postgresql":
        sqls.append(Sql(f"ANALYZE {table}", []))  # temporary tables get no statistics else
    return sqls


def super_user_update_sql(vendor: str, *, share_percent: int) -> list[Sql]:
    """Flag the smallest set of live customers bringing `share_percent` of monetary value.

    The set is computed once into a temporary table: as a correlated subquery, a planner
    misled by stale statistics re-ran the window over all customers for each of them.
    """
    customer = Customer._meta.db_table
    chosen = f"EXISTS (SELECT 1 FROM {SUPER} s WHERE s.id = {customer}.id)"
    return [
        Sql(f"DROP TABLE IF EXISTS {SUPER}", []),
        Sql(
            f"CREATE TEMPORARY TABLE {SUPER} AS SELECT w.id AS id FROM ({cumulative_sql()}) w "
            f"WHERE w.prev_cents * 100 < %s * w.total",
            [share_percent],
        ),
        *temp_index_sql(vendor, SUPER, "id"),
        Sql(f"UPDATE {customer} SET is_super_user = TRUE WHERE NOT is_super_user AND {chosen}", []),
        Sql(
            f"UPDATE {customer} SET is_super_user = FALSE WHERE is_super_user AND NOT {chosen}", []
        ),
        Sql(f"DROP TABLE {SUPER}", []),
    ]


def cumulative_sql(scope: str = "") -> str:
    """Live customers with monetary value, biggest first: cents, running sums, rank, count.

    `scope`, if given, is SQL selecting the customer ids to keep (its parameters go first).
    """
    customer = Customer._meta.db_table
    where = f"AND id IN ({scope})" if scope else ""
    return f"""
SELECT id, cents,
       SUM(cents) OVER (ORDER BY cents DESC, id ROWS UNBOUNDED PRECEDING) - cents AS prev_cents,
       SUM(cents) OVER () AS total,
       ROW_NUMBER() OVER (ORDER BY cents DESC, id) AS rn,
       COUNT(*) OVER () AS buyers
FROM (SELECT id, CAST(ROUND(rfm_monetary * 100) AS BIGINT) AS cents
      FROM {customer} WHERE merged_into_id IS NULL AND rfm_monetary > 0 {where}) m
"""


def window_start(as_of: datetime, days: int) -> datetime:
    return as_of - timedelta(days=days)
