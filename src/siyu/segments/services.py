"""Set-based recomputation of RFM scores and lifecycle stages (docs/rfm.md)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from siyu.core.bulk import load_mode
from siyu.customers.models import Customer
from siyu.segments import clv_data, lifecycle, rfm
from siyu.segments.models import (
    ClvFit,
    CustomerClv,
    LayerRecompute,
    RfmScheme,
    SnapshotMember,
    StageChange,
)


@dataclass(frozen=True)
class RfmSummary:
    as_of: datetime
    mode: str
    written: int  # customers whose values changed, or who were reset
    groups: dict[str, int] = field(default_factory=dict)  # live customers per named group
    super_users: int = 0
    seconds: float = 0.0

    @property
    def scored(self) -> int:
        return sum(self.groups.values())


def rfm_scheme_current() -> RfmScheme:
    """The brand's scheme (the first row), or quintiles when none is saved."""
    return RfmScheme.objects.order_by("id").first() or RfmScheme()


def _db_time(value: datetime):
    # SQLite stores naive UTC text; raw SQL needs the value the ORM would bind.
    return connection.ops.adapt_datetimefield_value(value)


def _execute(sql: rfm.Sql) -> int:
    params = [_db_time(p) if isinstance(p, datetime) else p for p in sql.params]
    with connection.cursor() as cursor:
        cursor.execute(sql.text, params)
        return cursor.rowcount


def _whole_base_session() -> None:
    """Tune this transaction for statements over the whole customer base (PostgreSQL only).

    The default 4 MB work_mem spills the per-customer aggregates and rank windows to disk, and
    JIT spends seconds compiling a statement that runs once a day.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")


@transaction.atomic
def rfm_recompute(*, as_of: datetime | None = None) -> RfmSummary:
    """Score every live customer with paid orders, reset the others, flag the super users.

    A few statements over the whole base, no loop over customers; re-running gives the same
    result. Raises ValidationError when the saved scheme has malformed thresholds.
    """
    started = time.perf_counter()
    _whole_base_session()
    as_of = as_of or timezone.now()
    scheme = rfm_scheme_current()
    scheme.clean()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {rfm.SCORED}")
    _execute(
        rfm.rfm_scored_sql(
            connection.vendor,
            as_of=as_of,
            window_start=as_of - timedelta(days=settings.SIYU_RFM_WINDOW_DAYS),
            scheme=scheme,
        )
    )
    for sql in rfm.temp_index_sql(connection.vendor, rfm.SCORED, "customer_id"):
        _execute(sql)
    written = sum(_execute(sql) for sql in rfm.rfm_write_sql(connection.vendor))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {rfm.SCORED}")
    share = settings.SIYU_SUPER_USER_SHARE
    for sql in rfm.super_user_update_sql(connection.vendor, share_percent=share):
        _execute(sql)
    groups = dict(
        Customer.objects.live()
        .exclude(rfm_group="")
        .values_list("rfm_group")
        .annotate(n=Count("id"))
        .order_by()
    )
    super_users = Customer.objects.live().filter(is_super_user=True).count()
    LayerRecompute.objects.create(kind=LayerRecompute.Kind.RFM, as_of=as_of)
    return RfmSummary(
        as_of=as_of,
        mode=scheme.mode,
        written=written,
        groups=groups,
        super_users=super_users,
        seconds=time.perf_counter() - started,
    )


@transaction.atomic
def stages_recompute(*, as_of: datetime | None = None) -> dict[tuple[str, str], int]:
    """Move live customers to their computed lifecycle stage, recording each transition.

    Returns the number of customers per (from_stage, to_stage); re-running with the same data
    changes nothing and returns {}.
    """
    _whole_base_session()
    as_of = as_of or timezone.now()
    LayerRecompute.objects.create(kind=LayerRecompute.Kind.STAGES, as_of=as_of)
    table = connection.ops.quote_name(StageChange._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two runs at once would each take the other's new rows for its own.
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        (last_id,) = cursor.fetchone()
    inserted = _execute(
        lifecycle.stage_insert_sql(
            as_of=as_of,
            engaged_since=as_of - timedelta(days=settings.SIYU_ENGAGED_DAYS),
            at_risk_before=as_of - timedelta(days=settings.SIYU_AT_RISK_DAYS),
            lost_before=as_of - timedelta(days=settings.SIYU_LOST_DAYS),
        )
    )
    if not inserted:
        return {}
    customer = connection.ops.quote_name(Customer._meta.db_table)
    _execute(
        rfm.Sql(
            f"UPDATE {customer} SET stage = sc.to_stage, updated_at = %s "
            f"FROM {table} sc WHERE sc.id > %s AND {customer}.id = sc.customer_id",
            [timezone.now(), last_id],
        )
    )
    rows = (
        StageChange.objects.filter(id__gt=last_id)
        .values_list("from_stage", "to_stage")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(from_stage, to_stage): n for from_stage, to_stage, n in rows}


def merge_snapshot_members(survivor_id: int, absorbed_ids: Sequence[int]) -> None:
    """Before a merge: a snapshot keeps the survivor once, however many of them it held."""
    held = SnapshotMember.objects.filter(customer_id=survivor_id).values("snapshot_id")
    absorbed = SnapshotMember.objects.filter(customer_id__in=absorbed_ids)
    absorbed.filter(snapshot_id__in=held).delete()
    # One statement for every snapshot: each keeps its first absorbed row.
    first = absorbed.values("snapshot_id").annotate(first=Min("id")).values("first")
    absorbed.exclude(id__in=first).delete()


def merge_customer_clv(survivor_id: int, absorbed_ids: Sequence[int]) -> None:
    """Before a merge: absorbed customers' predictions go; the next fit scores the survivor."""
    CustomerClv.objects.filter(customer_id__in=absorbed_ids).delete()


def clv_recompute(*, as_of: datetime | None = None, holdout_days: int | None = None) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on every live buyer's paid orders and replace all
    predictions (docs/clv.md); the ClvFit records the parameters, the holdout check and time.

    When the models cannot be fitted (no repeat buyers, no convergence) the fit records why
    and the previous predictions stay. Raises ValueError for `holdout_days` below 1.
    """
    started = time.perf_counter()
    as_of = as_of or timezone.now()
    holdout_days = settings.SIYU_CLV_HOLDOUT_DAYS if holdout_days is None else holdout_days
    if holdout_days < 1:
        raise ValueError("holdout_days must be at least 1")
    with transaction.atomic():
        _whole_base_session()
        histories = clv_data.buyer_histories(as_of=as_of, holdout_days=holdout_days)
    triples = clv_data.compress(histories.frequency, histories.recency, histories.T)
    fit = ClvFit(as_of=as_of, customers=histories.size, triples=triples.weights.size)
    try:
        model, scores = clv_data.fit_and_score(histories, triples)
    except clv_data.FitFailed as failure:
        fit.params = {"error": str(failure)}
        fit.seconds = time.perf_counter() - started
        fit.save()
        return fit
    fit.params = clv_data.params_json(model)
    fit.log_likelihood = model.bgnbd.log_likelihood
    fit.holdout = clv_data.holdout_check(histories, holdout_days=holdout_days)
    with transaction.atomic(), load_mode(CustomerClv):
        clv_data.predictions_write(histories.customer_id, scores)
        fit.seconds = time.perf_counter() - started
        fit.save()
    return fit
