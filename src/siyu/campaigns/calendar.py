"""The campaign calendar: what starts, runs or is running on each day of a month or a week.

Broadcasts appear on their start; recurring campaigns on their next runs (cron_days);
journeys and triggered campaigns as spans from their start to their end (open while they run).
One query for the campaigns, whatever their number; the rest is arithmetic.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from siyu.campaigns.models import Campaign
from siyu.campaigns.schedule import cron_days
from siyu.core.errors import DomainError

Kind, Status = Campaign.Kind, Campaign.Status
# Recurring campaigns whose schedule may still run.
WILL_RUN = (Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.PAUSED)


@dataclass
class Entry:
    campaign: Campaign
    what: str  # "start" (a broadcast), "run" (a recurring tick), "span" (a journey or trigger)
    at: datetime | None = None  # the (first) time that day, local
    runs: int = 1  # recurring: how many runs that day
    begins: bool = False  # span: starts that day
    ends: bool = False  # span: ends that day


@dataclass
class Day:
    date: date
    in_range: bool  # False for the neighbouring month's days that fill a month grid's weeks
    today: bool
    entries: list[Entry] = field(default_factory=list)


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(0)), timezone.get_current_timezone())


def _local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def calendar_days(
    campaigns: QuerySet[Campaign],
    *,
    first: date,
    last: date,
    in_range: tuple[date, date] | None = None,
    now: datetime | None = None,
) -> list[Day]:
    """Days first..last (local) with their entries, from `campaigns` (already scoped and
    filtered); `in_range` marks the days that belong to the month shown."""
    now = now or timezone.now()
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    open_now = Q(end_at__isnull=True) | Q(end_at__gt=max(start, now))
    begun = Q(started_at__lt=end) | Q(started_at__isnull=True, start_at__lt=end)
    not_over = Q(finished_at__gte=start) | Q(
        Q(finished_at__isnull=True), Q(end_at__isnull=True) | Q(end_at__gte=start)
    )
    rows = list(
        campaigns.filter(
            Q(kind=Kind.BROADCAST, start_at__gte=start, start_at__lt=end)
            | Q(open_now, kind=Kind.RECURRING, status__in=WILL_RUN)
            | Q(begun, not_over, kind__in=[Kind.JOURNEY, Kind.TRIGGERED])
        )
        .select_related("owner")
        .order_by("start_at", "id")
    )
    low, high = in_range or (first, last)
    today = timezone.localdate(now)
    days = {}
    current = first
    while current <= last:
        days[current] = Day(current, low <= current <= high, current == today)
        current += timedelta(days=1)

    for campaign in rows:
        if campaign.kind == Kind.BROADCAST:
            local = timezone.localtime(campaign.start_at)
            days[local.date()].entries.append(Entry(campaign, "start", at=local))
        elif campaign.kind == Kind.RECURRING:
            after = max(start, now, campaign.start_at or start)
            until = min(end, campaign.end_at) if campaign.end_at else end
            if after >= until or not campaign.schedule:
                continue
            try:
                runs = cron_days(campaign.schedule, after=after, until=until)
            except DomainError:  # a draft's schedule may still be malformed
                continue
            for moment, count in runs:
                local = timezone.localtime(moment)
                days[local.date()].entries.append(Entry(campaign, "run", at=local, runs=count))
        else:
            began = campaign.started_at or campaign.start_at
            ended = campaign.finished_at or campaign.end_at
            begin_day, end_day = _local_day(began), _local_day(ended) if ended else None
            current = max(first, begin_day)
            stop = min(last, end_day) if end_day else last
            while current <= stop:
                days[current].entries.append(
                    Entry(
                        campaign,
                        "span",
                        at=timezone.localtime(began) if current == begin_day else None,
                        begins=current == begin_day,
                        ends=current == end_day,
                    )
                )
                current += timedelta(days=1)
    for day in days.values():
        day.entries.sort(key=lambda e: (e.what != "span", e.at or _midnight(day.date)))
    return list(days.values())


def month_bounds(month: date) -> tuple[date, date, date, date]:
    """(first day of the grid, last day of the grid, first and last day of the month): the
    grid runs Monday to Sunday over whole weeks."""
    month_first = month.replace(day=1)
    following = (month_first + timedelta(days=32)).replace(day=1)
    month_last = following - timedelta(days=1)
    grid_first = month_first - timedelta(days=month_first.weekday())
    grid_last = month_last + timedelta(days=6 - month_last.weekday())
    return grid_first, grid_last, month_first, month_last
