"""Planning: turn due campaigns into deliveries, set-based and exactly once.

Every insert is one INSERT … SELECT over the audience with ON CONFLICT DO NOTHING on
(step, customer, occurrence), so a planner run that repeats (a retry, two workers, a crash
before the cursor moved) creates nothing new. Consent and a missing address are decided in
the same statement (CASE …), so a suppressed delivery is recorded with its reason instead of
silently left out. Caps are decided at send time, when it is known what was sent.
"""

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from siyu.campaigns.dnd import CONSENT_FIELD, quiet_until
from siyu.campaigns.models import Campaign, Delivery, JourneyEnrollment, Step, Variant
from siyu.campaigns.schedule import cron_ticks
from siyu.channels.base import adapter_for, registered
from siyu.commerce.models import Order
from siyu.customers.models import Customer, Identity
from siyu.customers.selectors import customers_visible_to
from siyu.events.models import Event
from siyu.org.selectors import Viewer, viewer_for
from siyu.segments.dsl import segment_members
from siyu.segments.models import SnapshotMember, StageChange
from siyu.segments.segment_services import segment_snapshot_create
from siyu.tags.models import TagChange

Status = Delivery.Status
Reason = Delivery.Reason
# Late-committed events and stage changes: look back this far behind the cursor every run;
# the unique key makes the overlap harmless.
TRIGGER_OVERLAP = timedelta(minutes=10)
# Birthdays and anniversaries missed while the worker was down are still sent, up to this many
# days late; older ones are skipped rather than greeting someone weeks after the day.
YEARLY_CATCH_UP_DAYS = 3
# Variant buckets: a multiplicative hash of (customer, step), the same in SQL and Python.
HASH_CUSTOMER, HASH_STEP, HASH_PRIME = 2654435761, 40503, 1000003


def variant_bucket(customer_id: int, step_id: int, total_weight: int) -> int:
    return ((customer_id * HASH_CUSTOMER + step_id * HASH_STEP) % HASH_PRIME) % total_weight


def variant_for(customer_id: int, step_id: int, variants: Sequence[Variant]) -> Variant:
    """The variant a customer gets on a step: fixed by the weights and hash(customer, step)."""
    bucket = variant_bucket(customer_id, step_id, sum(v.weight for v in variants))
    upper = 0
    for variant in variants:
        upper += variant.weight
        if bucket < upper:
            return variant
    raise ValueError("variants without weight")


@dataclass
class PlanSummary:
    planned: dict[int, int] = field(default_factory=dict)  # campaign id → deliveries inserted
    completed: list[int] = field(default_factory=list)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model) -> str:
    return _q(model._meta.db_table)


def _dt(value: datetime):
    # Raw SQL gets datetimes the way the ORM stores them (SQLite keeps UTC text).
    return connection.ops.adapt_datetimefield_value(value)


def _member_ids(qs: QuerySet[Customer]) -> tuple[str, list]:
    return qs.order_by().values(member=F("pk")).query.sql_with_params()


def _owner_viewer(campaign: Campaign) -> Viewer:
    # The campaign reaches the customers its owner may see, as their segment pages show.
    return viewer_for(campaign.owner.user)


def _suppression(channel: str) -> list[tuple[str, list, str]]:
    """(SQL condition on customer `c`, params, reason) in the order they are checked."""
    checks: list[tuple[str, list, str]] = []
    consent = CONSENT_FIELD.get(channel)
    if consent:
        checks.append((f"c.{_q(consent)} = %s", [False], Reason.OPT_OUT))
        if settings.SIYU_CAMPAIGN_CONSENT == "opt_in":
            checks.append((f"c.{_q(consent)} IS NULL", [], Reason.NO_CONSENT))
    kind = adapter_for(channel).address_kind if channel in registered() else ""
    identity = _table(Identity)
    if kind == "email":
        checks.append(
            (
                f"NOT EXISTS (SELECT 1 FROM {identity} i WHERE i.customer_id = c.id "
                "AND i.kind = %s)",
                [Identity.Kind.EMAIL],
                Reason.NO_ADDRESS,
            )
        )
    elif kind == "phone":
        checks.append(("c.phone = %s", [""], Reason.NO_ADDRESS))
    elif kind == "owner":
        checks.append(("c.owner_id IS NULL", [], Reason.NO_ADDRESS))
    elif kind == "wecom":
        checks.append(
            (
                f"NOT EXISTS (SELECT 1 FROM {identity} i WHERE i.customer_id = c.id "
                "AND i.kind = %s)",
                [Identity.Kind.WECOM_EXTERNAL],
                Reason.NO_ADDRESS,
            )
        )
    return checks


def _plan_step(
    *,
    campaign: Campaign,
    step: Step,
    variants: Sequence[Variant],
    audience: tuple[str, list],
    planned_for: datetime,
    now: datetime,
    unique_audience: bool = False,
) -> int:
    """Insert the step's deliveries for an audience: SQL selecting (customer_id, occurrence).

    `unique_audience`: the audience names each (customer, occurrence) once (a snapshot)."""
    audience_sql, audience_params = audience
    # Quiet hours hold a whole step at once: its time is the same for every row.
    postponed = ""
    if campaign.marketing and adapter_for(step.channel).quiet_hours:
        until = quiet_until(max(planned_for, now))
        if until is not None:
            planned_for, postponed = until, "quiet_hours"

    total = sum(v.weight for v in variants)
    bucket = f"((c.id * {HASH_CUSTOMER} + {step.pk * HASH_STEP}) %% {HASH_PRIME}) %% {total}"
    arms, upper, arm_params = [], 0, []
    for variant in variants:
        upper += variant.weight
        arms.append(f"WHEN {bucket} < {upper} THEN %s")
        arm_params.append(variant.pk)
    variant_sql = f"CASE {' '.join(arms)} END"

    checks = _suppression(step.channel)
    status_sql, reason_sql, check_params, reason_params = "%s", "%s", [], []
    if checks:
        status_sql = (
            "CASE " + " ".join(f"WHEN {cond} THEN %s" for cond, _, _ in checks) + " ELSE %s END"
        )
        reason_sql = (
            "CASE " + " ".join(f"WHEN {cond} THEN %s" for cond, _, _ in checks) + " ELSE %s END"
        )
        for _cond, params, reason in checks:
            check_params += [*params, Status.SUPPRESSED]
            reason_params += [*params, reason]
    status_params = [*check_params, Status.PENDING] if checks else [Status.PENDING]
    reason_params = [*reason_params, ""] if checks else [""]
    # ON CONFLICT makes every row a speculative insertion (a unique-index probe and a confirm
    # record first): ~30 % of a million-row plan. A unique audience into a step that has no
    # deliveries yet cannot conflict (its campaign row is locked, nobody else plans it), and
    # were it to, the unique key would fail the plan rather than double a delivery.
    skip_conflicts = not (unique_audience and not Delivery.objects.filter(step_id=step.pk).exists())

    sql = (
        f"INSERT INTO {_table(Delivery)} (campaign_id, step_id, variant_id, customer_id, "
        "staff_id, occurrence, channel, status, reason, postponed, attempts, planned_for, "
        "external_id, error, rendered_text) "
        f"SELECT %s, %s, {variant_sql}, c.id, c.owner_id, a.occurrence, %s, {status_sql}, "
        f"{reason_sql}, %s, 0, %s, '', '', '' "
        f"FROM ({audience_sql}) a JOIN {_table(Customer)} c ON c.id = a.customer_id "
        "WHERE c.merged_into_id IS NULL" + (" ON CONFLICT DO NOTHING" if skip_conflicts else "")
    )
    params = [
        campaign.pk,
        step.pk,
        *arm_params,
        step.channel,
        *status_params,
        *reason_params,
        postponed,
        _dt(planned_for),
        *audience_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def _steps(campaign: Campaign) -> list[tuple[Step, list[Variant]]]:
    steps = list(campaign.steps.prefetch_related("variants").order_by("order"))
    return [(s, [v for v in s.variants.all() if v.weight > 0]) for s in steps]


def _plan_all_steps(
    campaign, audience, base: datetime, now: datetime, *, unique_audience: bool = False
) -> int:
    count = 0
    for step, variants in _steps(campaign):
        if not variants:
            continue
        planned_for = base + timedelta(minutes=step.delay_minutes)
        count += _plan_step(
            campaign=campaign,
            step=step,
            variants=variants,
            audience=audience,
            planned_for=planned_for,
            now=now,
            unique_audience=unique_audience,
        )
    return count


def _members_audience(qs: QuerySet[Customer], occurrence: str) -> tuple[str, list]:
    sql, params = _member_ids(qs)
    return f"SELECT m.member AS customer_id, %s AS occurrence FROM ({sql}) m", [occurrence, *params]


# ------------------------------------------------------------------------------ kinds


def _plan_broadcast(campaign: Campaign, now: datetime) -> int:
    snapshot = segment_snapshot_create(
        segment=campaign.segment,
        viewer=_owner_viewer(campaign),
        name=f"{campaign.name} #{campaign.pk}",
        as_of=now,
    )
    campaign.snapshot = snapshot
    campaign.save(update_fields=["snapshot", "updated_at"])
    audience = (
        f"SELECT s.customer_id AS customer_id, %s AS occurrence "
        f"FROM {_table(SnapshotMember)} s WHERE s.snapshot_id = %s",
        ["", snapshot.pk],
    )
    return _plan_all_steps(campaign, audience, campaign.start_at or now, now, unique_audience=True)


def _goal_reached(campaign: Campaign, since_field: str) -> QuerySet | None:
    """Customers (of `since_field`'s rows) who reached the goal after that moment."""
    if campaign.goal == Campaign.Goal.EVENT and campaign.goal_event_type:
        return Exists(
            Event.objects.filter(
                customer_id=OuterRef("customer_id"),
                type=campaign.goal_event_type,
                occurred_at__gte=OuterRef(since_field),
            )
        )
    if campaign.goal == Campaign.Goal.PAID_ORDER:
        orders = Order.objects.filter(
            customer_id=OuterRef("customer_id"),
            paid_at__isnull=False,
            paid_at__gte=OuterRef(since_field),
        )
        if campaign.goal_min_amount is not None:
            orders = orders.filter(amount__gte=campaign.goal_min_amount)
        return Exists(orders)
    return None


def _plan_journey(campaign: Campaign, now: datetime) -> int:
    viewer = _owner_viewer(campaign)
    members = segment_members(campaign.segment.definition, viewer, now)
    enrollments = JourneyEnrollment.objects.filter(campaign=campaign, exited_at__isnull=True)
    # Exits first, so a customer who reached the goal gets nothing more.
    reached = _goal_reached(campaign, "entered_at")
    if reached is not None:
        enrollments.filter(reached).update(
            exited_at=now, exit_reason=JourneyEnrollment.ExitReason.GOAL
        )
    enrollments.exclude(customer_id__in=members.order_by().values("pk")).update(
        exited_at=now, exit_reason=JourneyEnrollment.ExitReason.LEFT_SEGMENT
    )
    exited = JourneyEnrollment.objects.filter(campaign=campaign, exited_at__isnull=False)
    Delivery.objects.filter(
        campaign=campaign, status=Status.PENDING, customer_id__in=exited.values("customer_id")
    ).update(status=Status.CANCELLED)

    # Entry: members not enrolled yet, all entering at `now`; one enrollment per customer.
    sql, params = _member_ids(members)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(JourneyEnrollment)} "
            "(campaign_id, customer_id, entered_at, exit_reason) "
            f"SELECT %s, m.member, %s, '' FROM ({sql}) m WHERE 1 = 1 ON CONFLICT DO NOTHING",
            [campaign.pk, _dt(now), *params],
        )
    audience = (
        f"SELECT e.customer_id AS customer_id, %s AS occurrence "
        f"FROM {_table(JourneyEnrollment)} e "
        "WHERE e.campaign_id = %s AND e.entered_at = %s AND e.exited_at IS NULL",
        ["", campaign.pk, _dt(now)],
    )
    return _plan_all_steps(campaign, audience, now, now)


def _plan_recurring(campaign: Campaign, now: datetime) -> int:
    since = campaign.cursor or (campaign.started_at - timedelta(minutes=1))
    ticks = cron_ticks(campaign.schedule, after=since, until=now)
    campaign.cursor = now
    campaign.save(update_fields=["cursor", "updated_at"])
    if not ticks:
        return 0
    # Only the latest missed tick: a worker that was down for a day sends once, not 24 times.
    tick = ticks[-1]
    members = segment_members(campaign.segment.definition, _owner_viewer(campaign), now)
    occurrence = tick.astimezone(UTC).strftime("%Y%m%dT%H%M")
    return _plan_all_steps(campaign, _members_audience(members, occurrence), tick, now)


def _new_days(campaign: Campaign, now: datetime) -> list[date]:
    """The organisation's calendar days that began since the last planner run (today as
    well on the first run), at most YEARLY_CATCH_UP_DAYS of them after a long outage."""
    today = timezone.localdate(now)
    if campaign.cursor is None:
        first = timezone.localdate(campaign.started_at or now)
    else:
        first = timezone.localdate(campaign.cursor) + timedelta(days=1)
    first = max(first, today - timedelta(days=YEARLY_CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def _on_day(field_name: str, target: date) -> Q:
    """`field_name` (a date, or a datetime read in the organisation's zone) falls on the
    month and day of `target`; Feb 29 counts as Feb 28 in other years."""
    match = Q(**{f"{field_name}__month": target.month, f"{field_name}__day": target.day})
    if (target.month, target.day) == (2, 28) and not calendar.isleap(target.year):
        match |= Q(**{f"{field_name}__month": 2, f"{field_name}__day": 29})
    return match


def _yearly_audience(
    campaign: Campaign, kind: str, days_before: int, now: datetime
) -> tuple[str, list] | None:
    """Birthdays or membership anniversaries falling `days_before` days after each new day.

    The occurrence is the year of the birthday or anniversary ("b2026", "a2026"), so each
    customer gets it once a year however often the planner runs. The whole customer table is
    read only on the first run of each day: within a day there is nothing new to find.
    """
    parts: list[tuple[str, list]] = []
    for day in _new_days(campaign, now):
        target = day + timedelta(days=days_before)
        if kind == "birthday":
            found = Customer.objects.filter(_on_day("birthday", target))
            occurrence = f"b{target.year}"
        else:
            # No membership date is recorded; joining is when Siyu first saw the customer.
            # Year 0 (the day they joined) is not an anniversary.
            found = Customer.objects.filter(
                _on_day("first_seen_at", target), first_seen_at__year__lt=target.year
            )
            occurrence = f"a{target.year}"
        rows = found.order_by().values(customer_id=F("pk"), occurrence=Value(occurrence))
        parts.append(rows.query.sql_with_params())
    if not parts:
        return None
    return (
        " UNION ALL ".join(f"SELECT * FROM ({sql}) y{n}" for n, (sql, _) in enumerate(parts)),
        [param for _, params in parts for param in params],
    )


def _trigger_audience(
    campaign: Campaign, since: datetime, now: datetime
) -> tuple[str, list] | None:
    trigger = campaign.trigger or {}
    kind = trigger.get("type")
    # Look back behind the cursor for late commits, but never to before the campaign started.
    after = max(since - TRIGGER_OVERLAP, campaign.started_at or since)
    if kind == "event":
        sql = (
            "SELECT e.customer_id AS customer_id, "
            "('e' || CAST(e.id AS VARCHAR(20))) AS occurrence "
            f"FROM {_table(Event)} e WHERE e.type = %s AND e.occurred_at > %s "
            "AND e.occurred_at <= %s"
        )
        params: list = [trigger["event_type"], _dt(after), _dt(now)]
    elif kind == "joined":
        days = timedelta(days=int(trigger.get("days", 0)))
        sql = (
            "SELECT j.id AS customer_id, %s AS occurrence "
            f"FROM {_table(Customer)} j WHERE j.first_seen_at > %s AND j.first_seen_at <= %s"
        )
        params = ["joined", _dt(since - days - TRIGGER_OVERLAP), _dt(now - days)]
    elif kind == "stage":
        sql = (
            "SELECT s.customer_id AS customer_id, "
            "('s' || CAST(s.id AS VARCHAR(20))) AS occurrence "
            f"FROM {_table(StageChange)} s WHERE s.to_stage = %s AND s.at > %s AND s.at <= %s"
        )
        params = [trigger["to"], _dt(after), _dt(now)]
    elif kind == "tag_added":
        sql = (
            "SELECT t.customer_id AS customer_id, "
            "('t' || CAST(t.id AS VARCHAR(20))) AS occurrence "
            f"FROM {_table(TagChange)} t WHERE t.tag_id = %s AND t.action = %s "
            "AND t.at > %s AND t.at <= %s"
        )
        params = [
            int(trigger["tag_id"]),
            TagChange.Action.ADDED,
            _dt(after),
            _dt(now),
        ]
    elif kind in ("birthday", "anniversary"):
        yearly = _yearly_audience(campaign, kind, int(trigger.get("days_before", 0)), now)
        if yearly is None:
            return None  # planned already today
        sql, params = yearly
    else:
        raise ValueError(f"unknown trigger {kind!r}")
    viewer = _owner_viewer(campaign)
    scope = (
        segment_members(campaign.segment.definition, viewer, now)
        if campaign.segment_id
        else customers_visible_to(viewer)
    )
    scope_sql, scope_params = _member_ids(scope)
    return (
        f"SELECT t.customer_id, t.occurrence FROM ({sql}) t WHERE t.customer_id IN ({scope_sql})",
        [*params, *scope_params],
    )


def _plan_triggered(campaign: Campaign, now: datetime) -> int:
    since = campaign.cursor or campaign.started_at
    audience = _trigger_audience(campaign, since, now)
    campaign.cursor = now
    campaign.save(update_fields=["cursor", "updated_at"])
    if audience is None:
        return 0
    return _plan_all_steps(campaign, audience, now, now)


PLANNERS = {
    Campaign.Kind.BROADCAST: _plan_broadcast,
    Campaign.Kind.JOURNEY: _plan_journey,
    Campaign.Kind.RECURRING: _plan_recurring,
    Campaign.Kind.TRIGGERED: _plan_triggered,
}


@transaction.atomic
def campaign_plan(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Plan one campaign now (it must be scheduled or running); returns deliveries inserted."""
    now = now or timezone.now()
    campaign = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("owner__user", "segment")
        .get(pk=campaign.pk)
    )
    if campaign.status == Campaign.Status.SCHEDULED:
        if campaign.start_at and campaign.start_at > now:
            return 0
        campaign.status, campaign.started_at = Campaign.Status.RUNNING, now
        campaign.save(update_fields=["status", "started_at", "updated_at"])
        if campaign.kind != Campaign.Kind.BROADCAST:
            return 0  # journeys and triggers begin with the next run: their cursor starts now
    elif campaign.status != Campaign.Status.RUNNING or campaign.kind == Campaign.Kind.BROADCAST:
        return 0  # a broadcast plans once, when it starts
    if campaign.end_at and campaign.end_at <= now:
        campaign.status, campaign.finished_at = Campaign.Status.COMPLETED, now
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
        return 0
    return PLANNERS[campaign.kind](campaign, now)


def campaign_plan_due(*, now: datetime | None = None) -> PlanSummary:
    """The planner's minute: start due campaigns, plan running ones, close finished broadcasts.

    Each campaign plans in its own transaction, so one broken campaign does not hold the rest.
    """
    now = now or timezone.now()
    summary = PlanSummary()
    due = Campaign.objects.filter(
        status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING]
    ).exclude(status=Campaign.Status.SCHEDULED, start_at__gt=now)
    for campaign in due.exclude(kind=Campaign.Kind.BROADCAST, status=Campaign.Status.RUNNING):
        summary.planned[campaign.pk] = campaign_plan(campaign=campaign, now=now)
    summary.completed = broadcasts_complete(now=now)
    return summary


@transaction.atomic
def broadcasts_complete(*, now: datetime | None = None) -> list[int]:
    """Running broadcasts with nothing left to send become completed."""
    now = now or timezone.now()
    open_rows = Delivery.objects.filter(
        campaign_id=OuterRef("pk"),
        status__in=[Status.PENDING, Status.SENDING, Status.ACCEPTED],
    )
    done = Campaign.objects.filter(
        kind=Campaign.Kind.BROADCAST, status=Campaign.Status.RUNNING
    ).exclude(Exists(open_rows))
    ids = list(done.values_list("pk", flat=True))
    Campaign.objects.filter(pk__in=ids).update(
        status=Campaign.Status.COMPLETED, finished_at=now, updated_at=now
    )
    return ids
