"""Staff tasks past their day: the daily reminder to each staff member, and per-staff
completion figures (done on time, late, open) for the campaign page and scorecards.

A task is due on the organisation's calendar day of its `due_at`; it is overdue once that day
has ended without it being done, and done late when it was done on a later day.
"""

from dataclasses import dataclass
from datetime import datetime, time

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from siyu.campaigns.dnd import cap_windows, quiet_window
from siyu.campaigns.models import Campaign, StaffTask
from siyu.notifications.models import Notification
from siyu.notifications.services import Notice, notify_each

REMINDER_KIND = "campaign_tasks_overdue"
# Without quiet hours, reminders go out from this local time on.
REMINDER_FROM = time(9, 0)


def staff_tasks_overdue(now: datetime) -> QuerySet[StaffTask]:
    """Open tasks due before today (organisation zone)."""
    day_start, _ = cap_windows(now)
    return StaffTask.objects.filter(done_at__isnull=True, due_at__lt=day_start)


def _reminder_from() -> time:
    window = quiet_window()
    return window[1] if window else REMINDER_FROM


@transaction.atomic
def staff_tasks_remind_overdue(*, now: datetime | None = None) -> int:
    """Tell each staff member with overdue tasks how many there are: one notification per
    staff member per day, however often this runs, and not before the quiet hours end.

    Returns how many staff members were told now. Set-based: one grouped query, one upsert.
    """
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.time() < _reminder_from():
        return 0
    key = f"campaign-tasks-overdue-{local.date().isoformat()}"
    # Read or not, a reminder already given today is not given again.
    told = Notification.objects.filter(staff_id=OuterRef("staff_id"), key=key)
    rows = (
        staff_tasks_overdue(now)
        .exclude(Exists(told))
        .values("staff_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    url = reverse("campaigns:tasks")
    notices = [
        Notice(
            staff_id=row["staff_id"],
            key=key,
            title=ngettext(
                "%(count)d campaign task is overdue",
                "%(count)d campaign tasks are overdue",
                row["n"],
            )
            % {"count": row["n"]},
            url=url,
        )
        for row in rows
    ]
    notify_each(kind=REMINDER_KIND, notices=notices)
    return len(notices)


@dataclass(frozen=True)
class StaffTaskFigures:
    staff_id: int
    name: str
    on_time: int  # done on the day they were due
    late: int  # done on a later day
    open: int  # not done yet, overdue ones included
    overdue: int  # not done and their day is over

    @property
    def total(self) -> int:
        return self.on_time + self.late + self.open

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.total if self.total else None


def staff_task_figures(
    *, campaign: Campaign | None = None, now: datetime | None = None
) -> list[StaffTaskFigures]:
    """Per staff member: tasks done on time, done late, open and overdue (of one campaign, or
    all), best on-time count first. One grouped query."""
    now = now or timezone.now()
    day_start, _ = cap_windows(now)
    tasks = StaffTask.objects.all()
    if campaign is not None:
        # A chat task hangs on its delivery, a moments post on its step.
        tasks = tasks.filter(
            Q(delivery__campaign_id=campaign.pk) | Q(step__campaign_id=campaign.pk)
        )
    done = Q(done_at__isnull=False)
    rows = (
        tasks.annotate(done_day=TruncDate("done_at"), due_day=TruncDate("due_at"))
        .values("staff_id", "staff__name")
        .annotate(
            on_time=Count("id", filter=done & Q(done_day__lte=F("due_day"))),
            late=Count("id", filter=done & Q(done_day__gt=F("due_day"))),
            open=Count("id", filter=Q(done_at__isnull=True)),
            overdue=Count("id", filter=Q(done_at__isnull=True, due_at__lt=day_start)),
        )
        .order_by("-on_time", "staff__name", "staff_id")
    )
    return [
        StaffTaskFigures(
            staff_id=row["staff_id"],
            name=row["staff__name"],
            on_time=row["on_time"],
            late=row["late"],
            open=row["open"],
            overdue=row["overdue"],
        )
        for row in rows
    ]
