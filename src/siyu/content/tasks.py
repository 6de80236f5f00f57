from huey.contrib.djhuey import db_task

from siyu.content.services import material_view_followup


@db_task(retries=2, retry_delay=5)
def material_view_followup_task(token: str, opened: bool = True) -> None:
    """The event, counters and notification after an open or a longer read (re-runnable);
    the visit is named by its token, which the page's INSERT sets (no id round trip)."""
    material_view_followup(token=token, opened=opened)
