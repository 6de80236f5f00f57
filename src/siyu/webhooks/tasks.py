"""The worker's side of webhooks: every minute, and right after a change queued deliveries."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from siyu.webhooks.sending import webhook_deliveries_purge, webhook_deliveries_send


# No lock: claims skip rows another worker holds, so several workers share the queue.
@db_periodic_task(crontab(minute="*"))
def webhook_deliveries_send_periodic() -> int:
    return webhook_deliveries_send()


@db_task()
def webhook_deliveries_send_task() -> int:
    return webhook_deliveries_send()


# 20:15 UTC is 04:15 in China, when the console is quiet.
@db_periodic_task(crontab(hour="20", minute="15"))
@lock_task("webhooks-purge")
def webhook_deliveries_purge_daily() -> int:
    return webhook_deliveries_purge()
