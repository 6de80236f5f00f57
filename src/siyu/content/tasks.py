from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from siyu.content.services import material_view_followup, material_views_follow_up


@db_task(retries=2, retry_delay=5)
def material_views_follow_up_task() -> int:
    """The event, counters and notification of every view opened or read longer since the
    last run, in sets (re-runnable); kicked by the public pages a few seconds after a view."""
    return material_views_follow_up()


@db_periodic_task(crontab(minute="*"))
def material_views_follow_up_sweep() -> int:
    """Each minute, whatever a lost kick (a queue briefly down) left pending."""
    return material_views_follow_up()


@db_task(retries=2, retry_delay=5)
def material_view_followup_task(token: str, opened: bool = True) -> None:
    """Kept for tasks queued before follow-ups were batched."""
    material_view_followup(token=token, opened=opened)
