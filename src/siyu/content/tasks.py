from huey.contrib.djhuey import db_task

from siyu.content.services import material_view_followup


@db_task(retries=2, retry_delay=5)
def material_view_followup_task(view_id: int) -> None:
    """The event, counters and notification after an open or a longer read (re-runnable)."""
    material_view_followup(view_id=view_id)
