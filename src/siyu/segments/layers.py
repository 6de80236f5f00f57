"""Reads for the layer pages: the RFM grid, the lifecycle funnel and super users.

Each is a bounded number of aggregate queries over the viewer's customers
(customers_visible_to), whatever the size of the base.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Count, Max, Sum
from django.utils import timezone

from siyu.customers.models import Customer
from siyu.customers.selectors import customers_visible_to
from siyu.org.selectors import Viewer
from siyu.segments.models import LayerRecompute, StageChange
from siyu.segments.selectors import SuperUsers, super_users

CENT = Decimal("0.01")
SCORES = (5, 4, 3, 2, 1)
FUNNEL = (
    Customer.Stage.LEAD,
    Customer.Stage.CONTACT,
    Customer.Stage.ENGAGED,
    Customer.Stage.FIRST_PURCHASE,
    Customer.Stage.REPEAT,
    Customer.Stage.MEMBER,
)
FALLEN = (Customer.Stage.AT_RISK, Customer.Stage.LOST)
TRANSITION_DAYS = 30


def _money(value) -> Decimal:
    # SQLite averages and sums decimals as floats.
    return Decimal(str(value or 0)).quantize(CENT)


@dataclass(frozen=True)
class RfmCell:
    r: int
    f: int
    customers: int
    average: Decimal  # average monetary value of the cell's customers


@dataclass(frozen=True)
class RfmGroupRow:
    group: str
    label: str
    customers: int
    percent: float  # of all the viewer's customers
    average: Decimal
    total: Decimal


@dataclass(frozen=True)
class RfmGrid:
    cells: list[RfmCell]  # all 25, R 5→1 then F 1→5
    groups: list[RfmGroupRow]  # the named groups, biggest first; "no paid orders" last
    customers: int
    scored: int


def rfm_grid(viewer: Viewer) -> RfmGrid:
    """Customers and average monetary value per (R, F) cell and per named group; two queries."""
    customers = customers_visible_to(viewer).order_by()
    by_cell = {
        (row["rfm_r"], row["rfm_f"]): row
        for row in customers.filter(rfm_r__isnull=False, rfm_f__isnull=False)
        .values("rfm_r", "rfm_f")
        .annotate(n=Count("pk"), average=Avg("rfm_monetary"))
    }
    cells = [
        RfmCell(
            r,
            f,
            by_cell.get((r, f), {}).get("n", 0),
            _money(by_cell.get((r, f), {}).get("average")),
        )
        for r in SCORES
        for f in reversed(SCORES)
    ]
    rows = list(
        customers.values("rfm_group").annotate(
            n=Count("pk"), average=Avg("rfm_monetary"), total=Sum("rfm_monetary")
        )
    )
    everyone = sum(row["n"] for row in rows)
    labels = dict(Customer.RfmGroup.choices)
    groups = sorted(
        (
            RfmGroupRow(
                row["rfm_group"],
                str(labels.get(row["rfm_group"], row["rfm_group"])),
                row["n"],
                100 * row["n"] / everyone,
                _money(row["average"]),
                _money(row["total"]),
            )
            for row in rows
        ),
        key=lambda g: (g.group == "", -g.customers, g.group),
    )
    scored = sum(g.customers for g in groups if g.group)
    return RfmGrid(cells, groups, everyone, scored)


@dataclass(frozen=True)
class StageCount:
    stage: str
    label: str
    customers: int


@dataclass(frozen=True)
class Transition:
    from_label: str
    to_label: str
    to_stage: str
    customers: int


@dataclass(frozen=True)
class Funnel:
    stages: list[StageCount]  # lead → member, in order
    fallen: list[StageCount]  # at risk, lost
    transitions: list[Transition]  # in the last TRANSITION_DAYS days, most frequent first
    since: datetime


def lifecycle_funnel(viewer: Viewer, *, now: datetime | None = None) -> Funnel:
    """Customers per lifecycle stage and the stage changes of the last 30 days; two queries."""
    customers = customers_visible_to(viewer).order_by()
    counts = dict(customers.values_list("stage").annotate(n=Count("pk")))
    labels = dict(Customer.Stage.choices)

    def count(stage: str) -> StageCount:
        return StageCount(stage, str(labels[stage]), counts.get(stage, 0))

    since = (now or timezone.now()) - timedelta(days=TRANSITION_DAYS)
    changes = StageChange.objects.filter(at__gte=since)
    if not viewer.is_admin:
        changes = changes.filter(customer_id__in=customers.values("pk"))
    rows = (
        changes.values_list("from_stage", "to_stage")
        .annotate(n=Count("pk"))
        .order_by("-n", "from_stage", "to_stage")
    )
    transitions = [Transition(str(labels[a]), str(labels[b]), b, n) for a, b, n in rows if n]
    return Funnel([count(s) for s in FUNNEL], [count(s) for s in FALLEN], transitions, since)


@dataclass(frozen=True)
class SuperUserFacts:
    pareto: SuperUsers  # over the viewer's customers
    flagged: int  # the viewer's customers flagged is_super_user (chosen brand-wide)


def super_user_facts(viewer: Viewer) -> SuperUserFacts:
    """The Pareto curve and threshold over the viewer's customers; two queries."""
    customers = customers_visible_to(viewer)
    share = settings.SIYU_SUPER_USER_SHARE / 100
    pareto = super_users(share=share, customers=None if viewer.is_admin else customers)
    flagged = customers.filter(is_super_user=True).count()
    return SuperUserFacts(pareto, flagged)


def last_recomputes() -> dict[str, datetime | None]:
    """When RFM and stages were last computed (the as-of time), by kind; one query."""
    latest = dict(LayerRecompute.objects.values_list("kind").annotate(at=Max("as_of")).order_by())
    return {kind: latest.get(kind) for kind in LayerRecompute.Kind.values}
