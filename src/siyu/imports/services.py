"""Import jobs: register a file, preview what it would do, run it in committed chunks."""

import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import Error, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem
from siyu.core.audit import audit_record
from siyu.core.bulk import bulk_insert
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Channel, Customer, Identity, MergeRecord, Relationship
from siyu.imports import presets, rows, tag_rows
from siyu.imports.loader import (
    CEDE_EVERY,
    CEDE_EVERY_DEFAULT,
    ORDER_COUNTS,
    PEOPLE_COUNTS,
    Counts,
    ceding,
    chunked,
    group_rows,
    load_orders,
    read_ahead,
    resolve_rows,
)
from siyu.imports.models import (
    STALLED_AFTER,
    ImportedRange,
    ImportJob,
    ImportRowError,
    SavedMapping,
)
from siyu.imports.readers import ImportFileError, open_table
from siyu.imports.reports import write_error_report
from siyu.imports.rows import RowError
from siyu.imports.tag_loader import load_customer_tags, load_tags, remove_assignments
from siyu.tags.models import CustomerTag
from siyu.webhooks.services import webhook_import_completed, webhooks_muted

CHUNK_ROWS = 10_000
# SQLite writes every page a chunk changed to its log at each commit, and new customers
# change pages all over the customer table's name indexes: fewer, larger commits write 40%
# fewer pages (200,000 customers: 219,000 → 133,000) for ~70 MB more memory.
SQLITE_CHUNK_ROWS = 25_000
PREVIEW_ROWS = 20
Progress = Callable[[int], None]


class _Rollback(Exception):
    """Raised to undo a dry run after its counts are taken."""


def import_job_create(
    *,
    path: str | Path,
    kind: str,
    channel: Channel | None,
    original_name: str = "",
    encoding: str | None = None,
    sheet: str | None = None,
    preset: str | None = None,
    columns: dict[str, str] | None = None,
    tag: str = "",
    user=None,
) -> ImportJob:
    """Keep a copy of the file and check that it can be read and mapped.

    channel: where the people came from; required except for a tags file, which only labels
    people already in the pool. tag: for a tags file, "group:tag" (or a bare tag) to put on
    every row's customer besides the row's own tags.
    Raises ImportFileError (a DomainError) with a message for the user when it cannot, and
    DomainError for a missing channel or a malformed tag.
    """
    if kind not in ImportJob.Kind.values:
        raise DomainError(f"unknown import kind {kind!r}", field="kind")
    tags_file = kind == ImportJob.Kind.TAGS
    if channel is None and not tags_file:
        raise DomainError("choose the channel the file comes from", field="channel")
    tag = (tag or "").strip()
    if tag and not tags_file:
        raise DomainError("a tag for every row is only for tags files", field="tag")
    if tag:
        group, name = tag_rows.parse_tag(tag)
        tag = f"{group}:{name}" if group else name
    path = Path(path)
    with open_table(path, encoding=encoding, sheet=sheet) as table:
        try:
            mapping = _mapping(table.header, kind, preset, columns)
        except ImportFileError as exc:
            if len(table.sheet_names) < 2:
                raise
            raise ImportFileError(
                f"{exc.message} (read from the sheet {table.sheet}; the workbook's sheets: "
                f"{', '.join(table.sheet_names)} — choose the sheet to import)"
            ) from exc
        detected_encoding, sheet_name = table.encoding or "", table.sheet or ""
    if tags_file and not tag and "tags" not in mapping.columns:
        found = ", ".join(h for h in table.header if h) or "(none)"
        raise ImportFileError(
            "map the column that holds the tags, or give one tag for every row. "
            f"Columns found: {found}"
        )
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"{uuid.uuid4().hex}{path.suffix.lower()[:10]}"
    shutil.copyfile(path, stored)
    job = ImportJob.objects.create(
        kind=kind,
        channel=channel,
        file=str(stored),
        original_name=(original_name or path.name)[:255],
        file_sha256=_sha256(stored),
        encoding=encoding or detected_encoding,
        sheet=sheet_name,
        preset=mapping.preset or "",
        columns=mapping.names,
        tag=tag,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    job.rows_total = rows_estimate(job)
    job.save(update_fields=["rows_total"])
    return job


def _mapping(header: list[str], kind: str, preset: str | None, columns: dict | None):
    """The preset or hand mapping asked for; otherwise the built-in preset the header fits, or
    failing that the saved mapping whose columns are all in the header (the most of them)."""
    try:
        return presets.build_mapping(header, kind=kind, preset=preset, user_mapping=columns)
    except ImportFileError:
        if preset or columns:
            raise
        present = set(header)
        fitting = [
            saved
            for saved in SavedMapping.objects.filter(kind=kind).order_by("created_at")
            if (names := {name for name in saved.columns.values() if name}) and names <= present
        ]
        if not fitting:
            raise
        best = max(fitting, key=lambda saved: len(saved.columns))
        return presets.build_mapping(header, kind=kind, user_mapping=best.columns)


def import_job_preview(*, job: ImportJob, progress: Progress | None = None) -> ImportJob:
    """Run the whole file inside a transaction that is rolled back: exact counts, no writes."""
    first_rows: list[dict] = []
    counts = Counts()
    read = 0
    try:
        with transaction.atomic():
            for parsed, chunk_counts, _errors in _process(job, start_after=0, progress=progress):
                read += len(parsed)
                counts.add(chunk_counts)
                for row in parsed[: PREVIEW_ROWS - len(first_rows)]:
                    first_rows.append(_preview_row(row))
            raise _Rollback
    except _Rollback:
        pass
    except (DomainError, Error, OSError) as exc:
        # The page polling for the preview shows the reason instead of waiting for ever.
        job.state, job.message = ImportJob.State.FAILED, _reason(exc)[:2000]
        job.save(update_fields=["state", "message"])
        return job
    job.preview = {"rows": first_rows, "counts": _counts_dict(counts, job.kind)}
    job.state = ImportJob.State.PREVIEWED
    job.rows_total = read  # exact now, where the upload's was an estimate (none for XLSX)
    job.save(update_fields=["preview", "state", "rows_total"])
    return job


def import_job_run(*, job: ImportJob, progress: Progress | None = None, actor=None) -> ImportJob:
    """Load the file in chunks, each committed with the job's counters.

    A job that failed or was interrupted resumes after its last committed chunk, and so does a
    stalled one (its process was killed); a finished job is left as it is. Raises nothing for
    bad data: the job ends failed with the reason. Raises DomainError when the job is running
    in another process.
    """
    runner = _claim(job)
    if runner is None:  # it has ended
        return job
    try:
        # One import.completed event instead of one per imported row (docs/webhooks.md).
        with webhooks_muted():
            for _ in _run_chunks(job, runner, progress):
                if job.state == ImportJob.State.CANCELLED:
                    return job
    except _Superseded:
        job.refresh_from_db()
        return job
    except ImportFileError as exc:
        # The file itself breaks down here: resuming would stop at the same place.
        done = f"The rows before it ({job.rows_read:,}) are imported" if job.rows_read else ""
        _fail(
            job,
            runner,
            f"{exc.message}. {done or 'Nothing was imported'}; fix the file and import it "
            "again (what is in already is matched, not added twice), or roll this import back",
        )
        return job
    except (DomainError, Error, OSError) as exc:
        _fail(job, runner, _reason(exc))
        return job
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        _fail(job, runner, f"stopped on an unexpected error ({reason}); resume to retry")
        raise
    except BaseException:
        # Interrupted (Ctrl-C, a worker told to stop): the open chunk was rolled back, and the
        # job can be resumed at once rather than after STALLED_AFTER.
        _fail(job, runner, "interrupted before the end; resume to continue after the last row")
        raise
    job.error_report = import_job_report(job=job) if job.row_errors.exists() else ""
    with transaction.atomic():
        # Not over a cancel that came as the last chunk committed.
        finished = ImportJob.objects.filter(
            pk=job.pk, runner=runner, state=ImportJob.State.RUNNING
        ).update(
            error_report=job.error_report,
            state=ImportJob.State.DONE,
            finished_at=timezone.now(),
            runner="",
        )
        job.refresh_from_db()
        if not finished:  # rolled back or taken over as the last chunk committed
            return job
        webhook_import_completed(job=job)
    audit_record(
        actor=actor or job.created_by,
        action=AuditLog.Action.IMPORT,
        target=job,
        summary=f"imported {job.original_name}: {job.created} new, {job.matched} matched",
        detail=job.counts,
    )
    return job


# States a job never leaves: running it again does nothing.
FINAL = (ImportJob.State.DONE, ImportJob.State.CANCELLED, ImportJob.State.ROLLED_BACK)


class _Superseded(Exception):
    """The job's claim passed to another process (or a rollback) while this one ran."""


def _claim(job: ImportJob) -> str | None:
    """Make this process the job's runner: one conditional UPDATE, so two workers given the
    same job cannot both run it. A running job can be claimed when it waits for a worker
    (queued by import_job_start) or has stalled; its old process then loses the claim."""
    runner, now = uuid.uuid4().hex, timezone.now()
    claimable = (
        Q(state=ImportJob.State.UPLOADED)
        | ImportJob.startable_q()
        | Q(state=ImportJob.State.RUNNING, runner="")
    )
    claimed = ImportJob.objects.filter(claimable, pk=job.pk).update(
        state=ImportJob.State.RUNNING,
        runner=runner,
        heartbeat_at=now,
        started_at=Coalesce("started_at", now),
        message="",
    )
    job.refresh_from_db()
    if not claimed and job.state in FINAL:
        return None
    if not claimed and job.preview_failed:
        raise DomainError(f"the preview found the file cannot be imported: {job.message}")
    if not claimed:
        last = timezone.localtime(job.heartbeat_at or job.created_at)
        raise DomainError(
            "this import is running in another process (last progress at "
            f"{last:%Y-%m-%d %H:%M}); it can be resumed once it has made no progress for "
            f"{STALLED_AFTER.seconds // 60} minutes"
        )
    return runner


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DomainError) else str(exc) or type(exc).__name__


def _fail(job: ImportJob, runner: str, message: str) -> None:
    with suppress(Error):  # the error may be the database itself
        ImportJob.objects.filter(pk=job.pk, runner=runner).update(
            state=ImportJob.State.FAILED, message=message[:2000], runner=""
        )
        job.refresh_from_db()


def _run_chunks(job: ImportJob, runner: str, progress: Progress | None) -> Iterator[None]:
    process = _process(job, start_after=job.rows_done, progress=progress)
    while True:
        with transaction.atomic():
            step = next(process, None)
            if step is None:
                return
            parsed, counts, errors = step
            # COPY / batched INSERT: a large file's failed rows are many, model instances slow.
            bulk_insert(
                ImportRowError,
                ["job_id", "row", "values", "errors"],
                (
                    (
                        job.pk,
                        row.row,
                        [_json_cell(v) for v in row.values],
                        [
                            {"column": e.column, "reason": e.reason, "value": e.value}
                            for e in row.errors
                        ],
                    )
                    for row in errors
                ),
                batched=True,
            )
            ImportedRange.objects.bulk_create(
                ImportedRange(job=job, model=label, first_id=first, last_id=last)
                for label, first, last in counts.ranges
            )
            # Only while this process holds the claim: otherwise the chunk rolls back whole.
            kept = ImportJob.objects.filter(pk=job.pk, runner=runner).update(
                rows_read=job.rows_read + len(parsed),
                rows_done=parsed[-1].row if parsed else job.rows_done,
                created=job.created + counts.created,
                matched=job.matched + counts.matched,
                merged=job.merged + counts.merged,
                invalid=job.invalid + counts.invalid,
                skipped=job.skipped + counts.skipped,
                orders_created=job.orders_created + counts.orders_created,
                orders_updated=job.orders_updated + counts.orders_updated,
                heartbeat_at=timezone.now(),
            )
            if not kept:
                raise _Superseded
        job.refresh_from_db()
        yield


@dataclass
class _Parsed:
    row: int
    values: list
    errors: list = field(default_factory=list)


def _process(job: ImportJob, *, start_after: int, progress: Progress | None):
    """Yield (rows of the chunk, counts, failed rows) per chunk, writing the chunk's effects."""
    seen_at = timezone.now()
    with open_table(job.file, encoding=job.encoding or None, sheet=job.sheet or None) as table:
        mapping = presets.build_mapping(
            table.header, kind=job.kind, preset=job.preset or None, user_mapping=job.columns
        )
        if job.kind == ImportJob.Kind.TAGS:
            parse = tag_rows.parser(mapping, job.tag)
        elif job.kind == ImportJob.Kind.ORDERS:
            parse = rows.parse_order
        else:
            parse = rows.parse_customer
        source = ceding(
            (
                parse(number, values, mapping)
                for number, values in table.rows(include_header=mapping.first_row_is_data)
                if number > start_after
            ),
            every=CEDE_EVERY.get(connection.vendor, CEDE_EVERY_DEFAULT),
        )
        key = (lambda r: r.external_order_id) if job.kind == ImportJob.Kind.ORDERS else None
        size = SQLITE_CHUNK_ROWS if connection.vendor == "sqlite" else CHUNK_ROWS
        chunks = chunked(source, size, key=key)
        if job.kind != ImportJob.Kind.TAGS:
            chunks = map(_prepared, chunks)
        for item in read_ahead(chunks):
            if job.kind == ImportJob.Kind.TAGS:
                chunk = item
                # Rows naming nobody or clashing tags get their errors while loading.
                counts = load_tags(
                    chunk, tags_column=mapping.names.get("tags", ""), user=job.created_by
                )
                counts.invalid = sum(1 for r in chunk if r.errors)
                if progress:
                    progress(len(chunk))
                yield chunk, counts, [r for r in chunk if r.errors]
                continue
            chunk, valid, failed, groups = item
            row_customer, counts = resolve_rows(
                valid, channel=job.channel, seen_at=seen_at, groups=groups
            )
            counts.invalid = len(failed)
            if job.kind == ImportJob.Kind.ORDERS:
                counts.orders_created, counts.orders_updated = load_orders(
                    valid, row_customer, channel=job.channel, counts=counts
                )
                counts.skipped = 0  # an order without a known buyer still loads
            else:
                failed += [
                    _Parsed(r.row, list(r.values), [_no_identity(r)])
                    for r, c in zip(valid, row_customer, strict=True)
                    if c is None
                ]
                if "tags" in mapping.columns or "level" in mapping.columns:
                    tagged = load_customer_tags(
                        valid,
                        row_customer,
                        tags_column=mapping.names.get("tags", ""),
                        level_column=mapping.names.get("level", ""),
                        user=job.created_by,
                    )
                    counts.ranges += tagged.ranges
                    # Loaded, but without the tags named in the error: reported, not invalid.
                    failed += [_Parsed(r.row, list(r.values), r.errors) for r in valid if r.errors]
            if progress:
                progress(len(chunk))
            yield chunk, counts, failed


def _prepared(chunk: list) -> tuple[list, list, list, list]:
    """(chunk, valid rows, failed rows, people of the valid rows): made in the read-ahead
    thread, which has the time while the database works on the chunk before."""
    valid = [r for r in chunk if not r.errors]
    return chunk, valid, [r for r in chunk if r.errors], group_rows(valid)


def _no_identity(row) -> RowError:
    reason = "no identifier to recognise this person by (masked phone only)"
    return RowError(row.row, "", reason, row.phone_display or "")


def import_job_report(*, job: ImportJob, fmt: str = "csv") -> str:
    """Write the job's failed rows as CSV or XLSX next to its file; return the path."""
    with open_table(job.file, encoding=job.encoding or None, sheet=job.sheet or None) as table:
        header = table.header
    path = Path(job.file).with_suffix(f".errors.{fmt}")
    # Tuples, not model instances: a large file's report has hundreds of thousands of rows.
    failed = (
        _Parsed(row, values, [RowError(row, **x) for x in errors])
        for row, values, errors in job.row_errors.order_by("row")
        .values_list("row", "values", "errors")
        .iterator(chunk_size=5000)
    )
    write_error_report(path, header, failed, fmt=fmt)
    return str(path)


def import_job_cancel(*, job: ImportJob, actor=None) -> ImportJob:
    """Stop a job after its current chunk; what was committed stays and is counted."""
    if job.state in FINAL:
        raise DomainError("this import has already ended")
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.CANCELLED)
    job.refresh_from_db()
    if actor is not None:
        done = f" after {job.rows_read:,} rows" if job.started_at else " before it started"
        audit_record(
            actor=actor,
            action=AuditLog.Action.UPDATE,
            target=job,
            summary=f"cancelled the import of {job.original_name}{done}",
        )
    return job


def _counts_dict(counts: Counts, kind: str) -> dict[str, int]:
    names = (ORDER_COUNTS if kind == ImportJob.Kind.ORDERS else ()) + PEOPLE_COUNTS
    return {k: getattr(counts, k) for k in names}


def _preview_row(row) -> dict:
    fields = {
        k: _json_cell(getattr(row, k))
        for k in ("name", "receiver_name", "external_order_id", "amount", "status")
        if getattr(row, k, None) not in (None, "")
    }
    if getattr(row, "tags", None):  # a tags file's row: group:tag as written
        fields["tags"] = "、".join(f"{g}:{n}" if g else n for g, n in row.tags)
    return {
        "row": row.row,
        "identifiers": [f"{k}:{v}" for k, v in row.identifiers],
        "phone_display": row.phone_display or "",
        "fields": fields,
        "errors": [f"{e.column}: {e.reason}" for e in row.errors],
    }


def _json_cell(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rows_estimate(job: ImportJob) -> int:
    """About how many data rows the file holds, for progress and ETA; cheap, not exact."""
    path = Path(job.file)
    with path.open("rb") as f:
        if f.read(4) == b"PK\x03\x04":
            # XLSX: exporters write wrong sheet dimensions, so there is no cheap count; progress
            # then shows rows done without a total.
            return 0
    lines = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


@transaction.atomic
def import_job_rollback(*, job: ImportJob, actor=None) -> ImportJob:
    """Remove what the job inserted: its orders, its identities, and its new customers; for a
    tags job, the tag assignments it made that still stand.

    A customer the job created is kept when it has gained anything since (a friendship, an
    order or identity from elsewhere, a merge), so a rollback never loses other data.
    Attribute fills and merges the job made stay, and so does the tag history.
    Raises DomainError for a running job, unless it has stalled: its lost process can then
    commit nothing more (the claim is taken from it here).
    """
    # Locked: a chunk being committed finishes first, and is rolled back here with the rest.
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.state == ImportJob.State.ROLLED_BACK:
        raise DomainError("this import was rolled back already")
    if job.state == ImportJob.State.RUNNING and not job.stalled:
        raise DomainError("a running import cannot be rolled back: cancel it first")
    if not job.can_roll_back:
        raise DomainError("this import has not started: there is nothing to roll back")
    job.runner = ""
    ranges: dict[str, Q] = {}
    for block in job.ranges.all():
        ranges[block.model] = ranges.get(block.model, Q(pk__in=[])) | Q(
            pk__range=(block.first_id, block.last_id)
        )
    nothing = Q(pk__in=[])
    if job.kind == ImportJob.Kind.TAGS:
        return _rollback_tags(job, ranges.get(CustomerTag._meta.label_lower, nothing), actor)
    # A customer file's tags: taken off with their history, as a tags job's are.
    removed_tags = remove_assignments(
        ranges.get(CustomerTag._meta.label_lower, nothing), user=actor
    )
    orders = Order.objects.filter(ranges.get(Order._meta.label_lower, nothing))
    OrderItem.objects.filter(order__in=orders).delete()
    removed_orders, _ = orders.delete()
    removed_identities, _ = Identity.objects.filter(
        ranges.get(Identity._meta.label_lower, nothing)
    ).delete()
    created = Customer.objects.filter(ranges.get(Customer._meta.label_lower, nothing))
    untouched = created.filter(merged_into__isnull=True).exclude(
        Exists(Identity.objects.filter(customer=OuterRef("pk")))
        | Exists(Relationship.objects.filter(customer=OuterRef("pk")))
        | Exists(Order.objects.filter(customer=OuterRef("pk")))
        | Exists(MergeRecord.objects.filter(survivor=OuterRef("pk")))
        | Exists(Customer.objects.filter(merged_into=OuterRef("pk")))
    )
    removed_customers = untouched.count()
    untouched.delete()
    kept = created.count()
    job.state = ImportJob.State.ROLLED_BACK
    job.message = (
        f"rolled back: {removed_customers} customers, {removed_identities} identities, "
        f"{removed_orders} orders and {removed_tags} tag assignments removed; {kept} customers "
        "kept because they have other data"
    )
    job.save(update_fields=["state", "message", "runner"])
    audit_record(
        actor=actor,
        action=AuditLog.Action.DELETE,
        target=job,
        summary=job.message[:200],
        detail={
            "customers": removed_customers,
            "orders": removed_orders,
            "tag_assignments": removed_tags,
            "kept": kept,
        },
    )
    return job


def _rollback_tags(job: ImportJob, assignments: Q, actor) -> ImportJob:
    removed = remove_assignments(assignments, user=actor)
    job.state = ImportJob.State.ROLLED_BACK
    job.message = f"rolled back: {removed} tag assignments removed"
    job.save(update_fields=["state", "message", "runner"])
    audit_record(
        actor=actor,
        action=AuditLog.Action.DELETE,
        target=job,
        summary=job.message,
        detail={"tag_assignments": removed},
    )
    return job


def import_job_start(*, job: ImportJob, actor=None) -> bool:
    """Queue a previewed, failed or stalled job for a worker; False if it is not startable now.

    One conditional UPDATE, so two clicks cannot queue the same job twice. The job waits,
    running without a runner, until a worker claims it (import_job_run). The actor's start
    is audited: the import itself is audited when it ends, in the uploader's name.
    """
    resumed = job.started_at is not None
    queued = ImportJob.objects.filter(ImportJob.startable_q(), pk=job.pk).update(
        state=ImportJob.State.RUNNING, runner="", heartbeat_at=timezone.now()
    )
    if queued and actor is not None:
        audit_record(
            actor=actor,
            action=AuditLog.Action.UPDATE,
            target=job,
            summary=f"{'resumed' if resumed else 'started'} the import of {job.original_name}",
        )
    return bool(queued)


def saved_mapping_create(*, name: str, kind: str, columns: dict[str, str], user) -> SavedMapping:
    """Raises DomainError when the name is taken."""
    if SavedMapping.objects.filter(name=name).exists():
        raise DomainError("a saved mapping with this name exists already", field="save_as")
    return SavedMapping.objects.create(name=name, kind=kind, columns=columns, created_by=user)
