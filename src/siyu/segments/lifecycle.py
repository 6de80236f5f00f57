"""Lifecycle stages, computed for every live customer with one CASE expression.

In order of precedence (the first that holds wins):

1. lost – had paid orders, the last one more than SIYU_LOST_DAYS days before ``as_of``;
2. at_risk – had paid orders, the last one more than SIYU_AT_RISK_DAYS days before;
3. repeat – two or more paid orders;
4. first_purchase – exactly one paid order;
5. engaged – an interaction in the last SIYU_ENGAGED_DAYS days (inclusive);
6. contact – an active relationship with a staff member;
7. lead – everyone else.

"Interaction" is for now a relationship added or an order placed (any status) in that window;
behaviour events (replies, views, check-ins) join it when events arrive with a later issue.
Members are left as they are: membership levels come later and will own that stage.
Paid orders are those of siyu.segments.rfm.
"""

from datetime import datetime

from siyu.commerce.models import Order
from siyu.customers.models import Customer, Relationship
from siyu.segments.models import StageChange
from siyu.segments.rfm import Sql, paid_orders_sql

Stage = Customer.Stage


def stage_insert_sql(
    *,
    as_of: datetime,
    engaged_since: datetime,
    at_risk_before: datetime,
    lost_before: datetime,
) -> Sql:
    """INSERT … SELECT one StageChange per live customer whose computed stage differs."""
    customer = Customer._meta.db_table
    relationship = Relationship._meta.db_table
    order = Order._meta.db_table
    change = StageChange._meta.db_table
    orders, paid_time, order_params = paid_orders_sql(as_of=as_of)
    placed_time = "COALESCE(o.placed_at, o.paid_at)"
    text = f"""
WITH paid AS (
    SELECT o.customer_id AS customer_id, COUNT(*) AS n, MAX({paid_time}) AS last_paid
    {orders}
    GROUP BY o.customer_id
),
placed AS (
    SELECT DISTINCT o.customer_id AS customer_id FROM {order} o
    WHERE o.customer_id IS NOT NULL AND {placed_time} >= %s AND {placed_time} <= %s
),
rel AS (
    SELECT customer_id,
           MAX(CASE WHEN status = '{Relationship.Status.ACTIVE}' THEN 1 ELSE 0 END) AS active,
           MAX(CASE WHEN added_at >= %s AND added_at <= %s THEN 1 ELSE 0 END) AS recent
    FROM {relationship} GROUP BY customer_id
)
INSERT INTO {change} (customer_id, from_stage, to_stage, at)
SELECT id, stage, new_stage, %s FROM (
    SELECT c.id AS id, c.stage AS stage, CASE
        WHEN p.last_paid < %s THEN '{Stage.LOST}'
        WHEN p.last_paid < %s THEN '{Stage.AT_RISK}'
        WHEN p.n >= 2 THEN '{Stage.REPEAT}'
        WHEN p.n = 1 THEN '{Stage.FIRST_PURCHASE}'
        WHEN pl.customer_id IS NOT NULL OR r.recent = 1 THEN '{Stage.ENGAGED}'
        WHEN r.active = 1 THEN '{Stage.CONTACT}'
        ELSE '{Stage.LEAD}'
    END AS new_stage
    FROM {customer} c
    LEFT JOIN paid p ON p.customer_id = c.id
    LEFT JOIN placed pl ON pl.customer_id = c.id
    LEFT JOIN rel r ON r.customer_id = c.id
    WHERE c.merged_into_id IS NULL AND c.stage <> '{Stage.MEMBER}'
) x
WHERE x.stage <> x.new_stage
"""
    params = [
        *order_params,
        engaged_since,
        as_of,
        engaged_since,
        as_of,
        as_of,  # StageChange.at
        lost_before,
        at_risk_before,
    ]
    return Sql(text, params)
