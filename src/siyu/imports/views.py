"""Console pages for imports: history, upload (with a hand mapping when no preset fits), a
job's preview, live progress and result, and its error report. Admins and managers only."""

import re
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import LEADS, role_required
from siyu.console.htmx import for_htmx
from siyu.core.audit import audit_record, client_ip
from siyu.core.errors import DomainError
from siyu.core.masking import mask_identity
from siyu.core.models import AuditLog
from siyu.core.pagination import keyset_page
from siyu.customers.models import Identity
from siyu.customers.selectors import channel_list
from siyu.imports.forms import (
    ENCODINGS,
    MAP_PREFIX,
    ImportForm,
    PageForm,
    column_guesses,
    target_label,
)
from siyu.imports.models import ImportJob
from siyu.imports.presets import PRESETS_BY_KEY
from siyu.imports.readers import ImportFileError, open_table
from siyu.imports.selectors import import_job_get, import_job_list, saved_mapping_list
from siyu.imports.services import (
    import_job_cancel,
    import_job_create,
    import_job_report,
    import_job_rollback,
    import_job_start,
    saved_mapping_create,
)
from siyu.imports.tasks import import_job_preview_task, import_job_run_task
from siyu.org.selectors import viewer_for

State = ImportJob.State
POLLING = (State.UPLOADED, State.RUNNING)  # the page follows the job while a worker has it
ENDED = (State.DONE, State.FAILED, State.CANCELLED, State.ROLLED_BACK)


@role_required(LEADS)
@for_htmx(partial="imports/_jobs.html")
def job_list(request):
    form = PageForm(request.GET)
    form.is_valid()  # a malformed page link is left out
    page = keyset_page(
        import_job_list(),
        after=form.cleaned_data.get("after"),
        before=form.cleaned_data.get("before"),
        size=settings.SIYU_PAGE_SIZE,
    )
    return TemplateResponse(request, "imports/list.html", {"page": page})


# --------------------------------------------------------------------------------------------
# Upload


@role_required(LEADS)
def job_new(request):
    """Upload a file. When no preset fits its columns, the form comes back with one select per
    field to map them by hand (and save the mapping); the file is kept meanwhile."""
    options = {"channels": channel_list(), "saved": saved_mapping_list()}
    if request.method != "POST":
        return _new_page(request, ImportForm(**options))
    staged = None if request.FILES.get("file") else _staged(request.POST.get("staged", ""))
    header = None
    if staged and request.POST.get("mapping_step"):
        header = _header(staged.path, request.POST.get("encoding"), request.POST.get("sheet"))
    form = ImportForm(
        request.POST,
        request.FILES,
        header=header,
        staged_name=staged.name if staged else "",
        **options,
    )
    valid = form.is_valid()
    if staged is None and form.cleaned_data.get("file"):
        staged = _stage(form.cleaned_data["file"])
        form.with_staged(staged.token, staged.name)
    if not valid:
        return _new_page(request, form)
    data = form.cleaned_data
    try:
        job = _job_create(request, staged, data)
    except ImportFileError as exc:
        return _new_page(request, _after_file_error(request, form, staged, exc, options))
    except (DomainError, IntegrityError):  # the mapping's name was taken meanwhile
        form.add_error("save_as", _("A saved mapping with this name exists already."))
        return _new_page(request, form)
    staged.path.unlink(missing_ok=True)
    transaction.on_commit(partial(import_job_preview_task, job.pk))
    return redirect("imports:detail", pk=job.pk)


def _new_page(request, form: ImportForm) -> TemplateResponse:
    return TemplateResponse(request, "imports/new.html", {"form": form})


def _job_create(request, staged: "Staged", data: dict) -> ImportJob:
    with transaction.atomic():
        job = import_job_create(
            path=staged.path,
            original_name=staged.name,
            kind=data["kind"],
            channel=data["channel"],
            encoding=data["encoding"] or None,
            sheet=data["sheet"] or None,
            preset=data["preset"],
            columns=data["columns"],
            tag=data["tag"],
            user=request.user,
        )
        if data.get("save_as") and data["columns"]:
            saved_mapping_create(
                name=data["save_as"], kind=data["kind"], columns=data["columns"], user=request.user
            )
    return job


def _after_file_error(request, form: ImportForm, staged: "Staged", exc, options) -> ImportForm:
    """The form to show after import_job_create refused the file.

    A file whose header reads gets the hand-mapping step; one that reads only without the
    chosen encoding or sheet is kept for another try; an unreadable one is dropped.
    """
    data = form.cleaned_data
    header = _header(staged.path, data["encoding"], data["sheet"])
    if header is None:
        if _header(staged.path, None, None) is None:
            staged.path.unlink(missing_ok=True)
            form.with_staged("", "")
        form.add_error(None, exc.message)
        return form
    values = request.POST.copy()
    values["staged"], values["mapping_step"] = staged.token, "1"
    if form.header is None:  # first mapping of this file: fill in the columns we recognise
        for key in [k for k in values if k.startswith(MAP_PREFIX)]:
            del values[key]
        for target, name in column_guesses(header, data["kind"]).items():
            values[MAP_PREFIX + target] = name
    form = ImportForm(values, header=header, staged_name=staged.name, **options)
    form.is_valid()
    form.add_error(None, exc.message)
    return form


def _header(path: Path, encoding: str | None, sheet: str | None) -> list[str] | None:
    """The file's column names as read with these settings, or None if it does not read."""
    encoding = encoding if encoding in dict(ENCODINGS) else None
    try:
        with open_table(path, encoding=encoding or None, sheet=sheet or None) as table:
            return table.header
    except ImportFileError:
        return None


# An upload waits in the staging folder while its columns are mapped; the form carries a
# signed token naming it, so a browser can only point at files it uploaded.
STAGING_SALT = "siyu.imports.staged"
STAGING_MAX_AGE = 24 * 3600
STAGED_FILE = re.compile(r"[0-9a-f]{32}\.(?:csv|tsv|txt|xlsx|xls)")


@dataclass(frozen=True)
class Staged:
    path: Path
    name: str  # as uploaded
    token: str


def _staging_folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / "staging"


def _stage(upload) -> Staged:
    folder = _staging_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stale = time.time() - STAGING_MAX_AGE
    for old in folder.iterdir():  # uploads whose mapping was never finished
        if old.stat().st_mtime < stale:
            old.unlink(missing_ok=True)
    path = folder / f"{uuid.uuid4().hex}{Path(upload.name).suffix.lower()}"
    with path.open("wb") as f:
        for chunk in upload.chunks():
            f.write(chunk)
    token = signing.dumps({"file": path.name, "name": upload.name}, salt=STAGING_SALT)
    return Staged(path, upload.name, token)


def _staged(token: str) -> Staged | None:
    try:
        value = signing.loads(token, salt=STAGING_SALT, max_age=STAGING_MAX_AGE)
    except signing.BadSignature:
        return None
    if not STAGED_FILE.fullmatch(value.get("file", "")):
        return None
    path = _staging_folder() / value["file"]
    return Staged(path, value.get("name", path.name), token) if path.is_file() else None


# --------------------------------------------------------------------------------------------
# One job


@role_required(LEADS)
@for_htmx(partial="imports/_progress.html")
def job_detail(request, pk: int):
    """The job; htmx polls it for the `_progress.html` partial while a worker has the job."""
    job = import_job_get(pk)
    full = viewer_for(request.user).sees_full_pii
    preview = job.preview or {}
    preset = PRESETS_BY_KEY.get(job.preset)
    return TemplateResponse(
        request,
        "imports/detail.html",
        {
            "job": job,
            "polling": job.state in POLLING and not job.stalled,
            "progress": _progress(job),
            "preset_label": preset.label if preset else "",
            "mapping": [(target_label(t), name) for t, name in job.columns.items()],
            "preview_counts": _counts(preview.get("counts") or {}, job.kind),
            "preview_rows": [_preview_row(r, full) for r in preview.get("rows", [])],
            "counts": _counts(job.counts, job.kind),
            "has_report": job.state in ENDED and job.failed_rows > 0,
        },
    )


@role_required(LEADS)
@require_POST
def job_start(request, pk: int):
    """Start a previewed job, or resume a failed or stalled one, in the background."""
    job = import_job_get(pk)
    if import_job_start(job=job, actor=request.user):
        transaction.on_commit(partial(import_job_run_task, job.pk))
        messages.success(request, _("The import has started."))
    else:
        messages.error(
            request,
            _("This import cannot be started now: it is %(state)s.")
            % {"state": job.get_state_display()},
        )
    return redirect("imports:detail", pk=job.pk)


@role_required(LEADS)
@require_POST
def job_cancel(request, pk: int):
    """Discard a previewed job, or stop a running one after its current chunk."""
    job = import_job_get(pk)
    try:
        import_job_cancel(job=job, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, _("The import was stopped."))
    return redirect("imports:detail", pk=job.pk)


@role_required(LEADS)
@require_POST
def job_rollback(request, pk: int):
    """Remove what the job added; customers that gained other data since are kept."""
    job = import_job_get(pk)
    try:
        import_job_rollback(job=job, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("imports:detail", pk=job.pk)


REPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@role_required(LEADS)
def job_errors(request, pk: int, fmt: str):
    """The rows that did not load, with the reason per field. They hold personal data, so the
    download is recorded in the audit log."""
    job = import_job_get(pk)
    if fmt not in REPORT_TYPES or job.failed_rows == 0:
        raise Http404
    try:
        path = import_job_report(job=job, fmt=fmt)
    except ImportFileError as exc:
        messages.error(request, exc.message)
        return redirect("imports:detail", pk=job.pk)
    audit_record(
        actor=request.user,
        action=AuditLog.Action.EXPORT,
        target=job,
        summary=f"downloaded the rows import {job.pk} could not load ({fmt})",
        detail={"format": fmt, "rows": job.failed_rows},
        ip=client_ip(request),
    )
    stem = Path(job.original_name).stem or f"import-{job.pk}"
    return FileResponse(
        open(path, "rb"),  # FileResponse closes it
        as_attachment=True,
        filename=f"{stem}-errors.{fmt}",
        content_type=REPORT_TYPES[fmt],
    )


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    percent: int | None  # None: no estimate, show a moving bar


def _progress(job: ImportJob) -> Progress:
    total = job.rows_total
    percent = min(100, job.rows_read * 100 // total) if total else None
    return Progress(done=job.rows_read, total=total, percent=percent)


def _counts(counts: dict, kind: str) -> list[tuple[str, int]]:
    if kind == ImportJob.Kind.TAGS:  # a tags file neither creates nor merges people
        labels = {
            "matched": _("Rows that tagged a customer"),
            "skipped": _("Rows whose customer had the tags already"),
            "invalid": _("Invalid rows"),
        }
    else:
        labels = {
            "orders_created": _("New orders"),
            "orders_updated": _("Orders updated"),
            "created": _("New customers"),
            "matched": _("Matched to existing customers"),
            "merged": _("Customers merged"),
            "invalid": _("Invalid rows"),
            "skipped": _("Skipped rows"),
        }
    return [(label, counts[key]) for key, label in labels.items() if key in counts]


def _preview_row(row: dict, full: bool) -> dict:
    """A parsed row as the preview shows it; identifiers masked for viewers who may not see
    them in full."""
    identifiers = []
    for text in row.get("identifiers", []):
        kind, _sep, value = str(text).partition(":")
        label = Identity.Kind(kind).label if kind in Identity.Kind.values else kind
        identifiers.append((label, value if full else mask_identity(kind, value)))
    return {
        "row": row.get("row"),
        "identifiers": identifiers,
        "phone_display": row.get("phone_display", ""),
        "fields": [(target_label(k), v) for k, v in (row.get("fields") or {}).items()],
        "errors": row.get("errors", []),
    }
