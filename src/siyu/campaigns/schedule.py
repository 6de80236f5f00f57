"""Recurring schedules: five cron fields read in the organisation's zone (huey's crontab)."""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from huey import crontab

from siyu.core.errors import DomainError

# A worker that was down longer than this does not look further back for missed ticks.
LOOKBACK = timedelta(days=1)


def cron_parse(expression: str):
    """The matcher for "minute hour day month weekday"; raises DomainError when malformed."""
    fields = (expression or "").split()
    if len(fields) != 5:
        raise DomainError(
            _("A schedule has five fields: minute hour day month weekday."), field="schedule"
        )
    try:
        return crontab(*fields, strict=True)
    except ValueError as error:
        raise DomainError(
            _("The schedule is not valid: %(error)s") % {"error": error}, field="schedule"
        ) from None


def cron_ticks(expression: str, *, after: datetime, until: datetime) -> list[datetime]:
    """The whole minutes in (after, until] that the schedule names, oldest first."""
    matches = cron_parse(expression)
    zone = timezone.get_current_timezone()
    start = max(after, until - LOOKBACK)
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    ticks = []
    while minute <= until:
        if matches(timezone.localtime(minute, zone).replace(tzinfo=None)):
            ticks.append(minute)
        minute += timedelta(minutes=1)
    return ticks


def cron_days(expression: str, *, after: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """For each local day with runs in [after, until): (its first run, how many runs).

    For calendars: days are walked, not minutes, so a month costs ~31 checks whatever the
    schedule; only the first and last day are looked at minute by minute. Raises DomainError
    when the expression is malformed.
    """
    cron_parse(expression)
    minute, hour, day, month, weekday = expression.split()
    minutes = [m for m in range(60) if crontab(minute)(datetime(2000, 1, 3, 0, m))]
    hours = [h for h in range(24) if crontab("0", hour)(datetime(2000, 1, 3, h, 0))]
    day_matches = crontab("0", "0", day, month, weekday)
    zone = timezone.get_current_timezone()
    first, last = timezone.localtime(after, zone).date(), timezone.localtime(until, zone).date()
    days = []
    current = first
    while current <= last:
        if day_matches(datetime(current.year, current.month, current.day)):
            if current in (first, last):  # the window may cut these days
                local = [datetime.combine(current, time(h, m)) for h in hours for m in minutes]
                aware = [timezone.make_aware(x, zone) for x in local]
                times = [t for t in aware if after <= t < until]
                if times:
                    days.append((times[0], len(times)))
            else:
                start = datetime.combine(current, time(hours[0], minutes[0]))
                days.append((timezone.make_aware(start, zone), len(hours) * len(minutes)))
        current += timedelta(days=1)
    return days


def cron_next(expression: str, *, after: datetime, count: int = 5) -> list[datetime]:
    """The schedule's next `count` runs after `after` (within a year), for people to read.

    Raises DomainError when the expression is malformed."""
    matches = cron_parse(expression)
    runs: list[datetime] = []
    for first, _runs in cron_days(expression, after=after, until=after + timedelta(days=366)):
        day, minute = timezone.localtime(first).date(), first
        while len(runs) < count and timezone.localtime(minute).date() == day:
            if matches(timezone.localtime(minute).replace(tzinfo=None)):
                runs.append(minute)
            minute += timedelta(minutes=1)
        if len(runs) >= count:
            break
    return runs
