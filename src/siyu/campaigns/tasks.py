"""The engine's clock: plan every minute, send every minute, settle asynchronous sends.

Each periodic task is a thin, re-runnable wrapper: planning is idempotent by the outbox's
unique key, and senders claim disjoint batches, so overlapping runs do no harm.
"""

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from siyu.campaigns.attribution import conversions_attribute
from siyu.campaigns.guardrail import campaigns_guardrail_check
from siyu.campaigns.services import (
    campaign_plan_due,
    deliveries_poll_accepted,
    deliveries_send_due,
)
from siyu.campaigns.staff_tasks import staff_tasks_remind_overdue

# A sender stops a little before the next minute's run is enqueued.
SEND_BUDGET_SECONDS = 50


@db_periodic_task(crontab(minute="*"))
@lock_task("campaigns-plan")
def campaigns_plan_minutely() -> None:
    campaign_plan_due()


@db_periodic_task(crontab(minute="*"))
def deliveries_send_minutely() -> None:
    # Several senders in parallel, on as many workers as there are; they claim disjoint rows.
    for _ in range(max(settings.SIYU_CAMPAIGN_SENDERS, 1)):
        deliveries_send_task()


@db_task()
def deliveries_send_task() -> int:
    return deliveries_send_due(budget_seconds=SEND_BUDGET_SECONDS).sent


@db_periodic_task(crontab(minute="*/5"))
@lock_task("campaigns-poll")
def deliveries_poll_every_five_minutes() -> None:
    deliveries_poll_accepted()


@db_periodic_task(crontab(minute="7"))
@lock_task("campaigns-attribute")
def conversions_attribute_hourly() -> None:
    conversions_attribute()


@db_periodic_task(crontab(minute="*/5"))
@lock_task("campaigns-guardrail")
def campaigns_guardrail_every_five_minutes() -> None:
    campaigns_guardrail_check()


@db_periodic_task(crontab(minute="15"))
@lock_task("campaigns-overdue-tasks")
def staff_tasks_remind_overdue_hourly() -> None:
    # Hourly, though each staff member is told once a day: a worker that was down at nine
    # still reminds at ten.
    staff_tasks_remind_overdue()
