"""Recurring schedules: five cron fields read in the organisation's zone (huey's crontab)."""

from datetime import datetime, timedelta

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
