"""Daily prune of long-read notifications. Huey's clock is UTC: 20:30 UTC is 04:30 in China."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from siyu.notifications.services import notifications_prune


@db_periodic_task(crontab(hour="20", minute="30"))
@lock_task("notifications-prune")
def notifications_prune_daily() -> int:
    return notifications_prune()
