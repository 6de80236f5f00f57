"""Reads for the imports console: the job history, one job, the saved mappings."""

from django.db.models import QuerySet
from django.http import Http404

from siyu.imports.models import ImportJob, SavedMapping


def import_job_list() -> QuerySet[ImportJob]:
    """Every import job with what its history row shows, in a fixed number of queries.

    Admins and managers see all jobs: a manager imports into the whole pool.
    """
    return ImportJob.objects.select_related("channel", "created_by__staff").defer(
        "preview", "columns"
    )


def import_job_get(pk: int) -> ImportJob:
    """The job with its channel and uploader; raises Http404 when there is none."""
    job = ImportJob.objects.select_related("channel", "created_by__staff").filter(pk=pk).first()
    if job is None:
        raise Http404
    return job


def saved_mapping_list(kind: str | None = None) -> QuerySet[SavedMapping]:
    qs = SavedMapping.objects.order_by("name", "pk")
    return qs.filter(kind=kind) if kind else qs
