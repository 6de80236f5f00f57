"""Overdue staff tasks: a daily reminder per staff member, overdue first on "my tasks", and
per-staff completion figures (on time, late, open)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from siyu.campaigns.models import StaffTask
from siyu.campaigns.services import campaign_plan_due, deliveries_send_due
from siyu.campaigns.staff_tasks import (
    REMINDER_KIND,
    staff_task_figures,
    staff_tasks_remind_overdue,
)
from siyu.campaigns.tasks import staff_tasks_remind_overdue_hourly
from siyu.customers.tests.factories import CustomerFactory
from siyu.notifications.models import Notification

pytestmark = pytest.mark.django_db

# Shanghai local times on 2 July 2026.
MORNING_8 = datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
MORNING_10 = datetime(2026, 7, 2, 2, 0, tzinfo=UTC)
EVENING_20 = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def tasks(make_campaign, people, org):
    """Staff tasks for A's three customers and two of A2's, created through the engine and
    then given due times: A has two overdue, A2 one; one of A's is due today."""
    for n in range(2):
        CustomerFactory(name=f"王{n}", city="上海", owner=org.staff_a2)
    campaign = make_campaign("staff_task", now=timezone.now())
    campaign_plan_due(now=timezone.now())
    deliveries_send_due(channels=["staff_task"])
    rows = list(StaffTask.objects.order_by("customer_id"))
    assert len(rows) == 5
    due = [
        datetime(2026, 6, 30, 2, 0, tzinfo=UTC),  # A: two days ago
        datetime(2026, 7, 1, 15, 59, tzinfo=UTC),  # A: 23:59 yesterday
        datetime(2026, 7, 1, 16, 0, tzinfo=UTC),  # A: 00:00 today, not overdue
        datetime(2026, 7, 1, 3, 0, tzinfo=UTC),  # A2: yesterday
        datetime(2026, 7, 2, 1, 0, tzinfo=UTC),  # A2: today
    ]
    for task, due_at in zip(rows, due, strict=True):
        StaffTask.objects.filter(pk=task.pk).update(due_at=due_at)
    return campaign


def reminders():
    return sorted(
        Notification.objects.filter(kind=REMINDER_KIND).values_list("staff_id", "title", "count")
    )


def test_each_staff_member_is_told_once_a_day_how_many_tasks_are_overdue(tasks, org):
    with translation.override("en"):
        assert staff_tasks_remind_overdue(now=MORNING_8) == 0  # quiet hours: wait for nine
        assert staff_tasks_remind_overdue(now=MORNING_10) == 2
        assert reminders() == [
            (org.staff_a.pk, "2 campaign tasks are overdue", 1),
            (org.staff_a2.pk, "1 campaign task is overdue", 1),
        ]
        # Read or not, the same day brings no second reminder.
        Notification.objects.filter(staff=org.staff_a).update(read_at=MORNING_10)
        assert staff_tasks_remind_overdue(now=EVENING_20) == 0
        assert Notification.objects.filter(kind=REMINDER_KIND).count() == 2
        # The next day, A still has them (and today's is overdue now): a new reminder.
        assert staff_tasks_remind_overdue(now=MORNING_10 + timedelta(days=1)) == 2
    latest = Notification.objects.filter(staff=org.staff_a, read_at__isnull=True).get()
    assert latest.title == "3 campaign tasks are overdue"
    assert latest.url == reverse("campaigns:tasks")


def test_done_tasks_are_not_overdue_and_the_periodic_task_runs_the_reminder(tasks, org, settings):
    settings.SIYU_QUIET_HOURS = "23:59-00:00"  # quiet hours end at midnight: any time will do
    StaffTask.objects.filter(staff=org.staff_a2).update(done_at=MORNING_8)
    staff_tasks_remind_overdue_hourly.call_local()  # real clock: every task is overdue by now
    assert [staff for staff, _, _ in reminders()] == [org.staff_a.pk]


def test_completion_figures_per_staff_count_on_time_late_and_open(tasks, org):
    rows = {t.customer_id: t for t in StaffTask.objects.all()}
    ids = sorted(rows)
    done = {
        ids[0]: datetime(2026, 6, 30, 15, 59, tzinfo=UTC),  # due the 30th, done 23:59 that day
        ids[1]: datetime(2026, 7, 1, 16, 30, tzinfo=UTC),  # due the 1st, done the 2nd: late
        ids[3]: datetime(2026, 7, 1, 10, 0, tzinfo=UTC),  # A2, same day: on time
    }
    for customer_id, done_at in done.items():
        StaffTask.objects.filter(customer_id=customer_id).update(done_at=done_at)

    figures = staff_task_figures(campaign=tasks, now=MORNING_10 + timedelta(days=1))

    assert [(f.staff_id, f.on_time, f.late, f.open, f.overdue) for f in figures] == [
        (org.staff_a.pk, 1, 1, 1, 1),
        (org.staff_a2.pk, 1, 0, 1, 1),
    ]
    assert figures[0].name == org.staff_a.name and figures[0].on_time_rate == pytest.approx(1 / 3)
    assert staff_task_figures(campaign=None, now=MORNING_10) == staff_task_figures(
        campaign=tasks, now=MORNING_10
    )


def test_my_tasks_shows_overdue_ones_first_and_marked(tasks, org, login, people):
    # Put the overdue ones after today's by id, so only the due time orders them.
    StaffTask.objects.filter(customer=people[2]).update(due_at=timezone.now() - timedelta(hours=1))
    StaffTask.objects.filter(customer=people[0]).update(due_at=timezone.now() - timedelta(days=3))
    StaffTask.objects.filter(customer=people[1]).update(due_at=timezone.now() - timedelta(days=1))
    html = login(org.staff_a).get(reverse("campaigns:tasks")).content.decode()
    order = [html.index(f'customers/{p.pk}/"') for p in (people[0], people[1], people[2])]
    assert order == sorted(order)
    assert html.count("逾期</span>") >= 2  # "overdue"
