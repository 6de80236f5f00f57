"""The worker's side of webhooks: every minute, and right after a change queued deliveries."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from siyu.webhooks.sending import webhook_deliveries_send


# No lock: claims skip rows another worker holds, so several workers share the queue.
@db_periodic_task(crontab(minute="*"))
def webhook_deliveries_send_periodic() -> int:
    return webhook_deliveries_send()


@db_task()
def webhook_deliveries_send_task() -> int:
    return webhook_deliveries_send()
