"""Do not disturb (不打扰): quiet hours, consent and frequency caps (docs/campaigns.md)."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from siyu.campaigns.models import Delivery

Reason = Delivery.Reason

# The customer's consent flag per channel; channels without one are person-to-person.
CONSENT_FIELD = {"email": "consent_email", "sms": "consent_sms"}


def _clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes or 0))


def quiet_window() -> tuple[time, time] | None:
    """(start, end) of the quiet hours in the organisation's zone, or None when switched off."""
    raw = (settings.SIYU_QUIET_HOURS or "").strip()
    if not raw:
        return None
    try:
        start, end = (_clock(part) for part in raw.split("-"))
    except ValueError as error:
        raise ImproperlyConfigured(
            f"SIYU_QUIET_HOURS must look like 21:00-09:00, got {raw!r}"
        ) from error
    return None if start == end else (start, end)


def quiet_until(moment: datetime) -> datetime | None:
    """When the quiet hours around `moment` end, or None if `moment` is outside them.

    The window may wrap midnight (21:00-09:00): 22:30 and 08:59 are quiet, 09:00 is not.
    """
    window = quiet_window()
    if window is None:
        return None
    start, end = window
    local = timezone.localtime(moment)
    clock = local.time()
    wraps = start > end
    quiet = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not quiet:
        return None
    day = local.date()
    if wraps and clock >= start:
        day += timedelta(days=1)
    naive = datetime.combine(day, end)
    return timezone.make_aware(naive, timezone.get_current_timezone())


def consent_reason(channel: str, value: bool | None) -> str:
    """Why a customer's consent flag stops a message on `channel` ("" when it does not)."""
    if channel not in CONSENT_FIELD:
        return ""
    if value is False:
        return Reason.OPT_OUT
    if value is None and settings.SIYU_CAMPAIGN_CONSENT == "opt_in":
        return Reason.NO_CONSENT
    return ""


def cap_windows(now: datetime) -> tuple[datetime, datetime]:
    """The starts of "today" and "this week" for caps: local midnight, and 6 days before it.

    Days are calendar days in the organisation's zone, so a customer messaged at 20:00 may get
    the next day's message at 09:00; the week is the last seven calendar days.
    """
    local = timezone.localtime(now)
    midnight = timezone.make_aware(
        datetime.combine(local.date(), time(0)), timezone.get_current_timezone()
    )
    return midnight, midnight - timedelta(days=6)


@dataclass
class CapCounter:
    """Marketing messages sent per customer (all channels and per channel), today and this week,
    kept up to date while a batch is decided so two messages in one batch count too."""

    day: dict[int, int]
    week: dict[int, int]
    channel_day: dict[tuple[int, str], int]
    channel_week: dict[tuple[int, str], int]

    def refusal(self, customer_id: int, channel: str) -> str:
        if self.day.get(customer_id, 0) >= settings.SIYU_CAMPAIGN_CAP_DAY:
            return Reason.CAP_DAY
        if self.week.get(customer_id, 0) >= settings.SIYU_CAMPAIGN_CAP_WEEK:
            return Reason.CAP_WEEK
        key = (customer_id, channel)
        if self.channel_day.get(key, 0) >= settings.SIYU_CAMPAIGN_CHANNEL_CAP_DAY:
            return Reason.CAP_CHANNEL_DAY
        if self.channel_week.get(key, 0) >= settings.SIYU_CAMPAIGN_CHANNEL_CAP_WEEK:
            return Reason.CAP_CHANNEL_WEEK
        return ""

    def count(self, customer_id: int, channel: str) -> None:
        key = (customer_id, channel)
        self.day[customer_id] = self.day.get(customer_id, 0) + 1
        self.week[customer_id] = self.week.get(customer_id, 0) + 1
        self.channel_day[key] = self.channel_day.get(key, 0) + 1
        self.channel_week[key] = self.channel_week.get(key, 0) + 1
