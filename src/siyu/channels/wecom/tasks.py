"""The worker's side of the WeCom connector: thin wrappers around the services."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from siyu.channels.wecom import services


@db_task()
def callback_process_task(callback_id: int) -> None:
    services.callback_process(callback_id=callback_id)


# Callbacks that failed (WeCom unreachable, a worker died) are tried again every minute.
@db_periodic_task(crontab(minute="*"))
def callbacks_retry_periodic() -> int:
    return services.callbacks_retry()
