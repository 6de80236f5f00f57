from contextlib import suppress

from huey.contrib.djhuey import db_task

from siyu.core.errors import DomainError
from siyu.imports.models import ImportJob
from siyu.imports.services import import_job_preview, import_job_run


@db_task()
def import_job_run_task(job_id: int) -> None:
    """Run or resume a job; its committed chunks are its progress."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        # DomainError: another worker claimed it, as a stalled job resumed is queued again.
        with suppress(DomainError):
            import_job_run(job=job)


@db_task()
def import_job_preview_task(job_id: int) -> None:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        import_job_preview(job=job)
