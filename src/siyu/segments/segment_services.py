"""Writes of saved segments: create, edit, duplicate, delete, freeze a snapshot, export.

A segment's definition is shared by everyone; what it selects is always cut to the viewer's
scope (siyu.segments.dsl.segment_members), so a snapshot or an export by a staff member holds
only their customers.
"""

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import IO, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.masking import mask_phone
from siyu.core.models import AuditLog
from siyu.customers.models import Customer
from siyu.imports.reports import XLSX_CELL_LIMIT, escape_cell
from siyu.org.selectors import Viewer
from siyu.segments.dsl import segment_members, validate_definition
from siyu.segments.models import Segment, SegmentSnapshot, SnapshotMember
from siyu.tags.models import CustomerTag

NAME_LENGTH = Segment._meta.get_field("name").max_length
DESCRIPTION_LENGTH = Segment._meta.get_field("description").max_length
SNAPSHOT_NAME_LENGTH = SegmentSnapshot._meta.get_field("name").max_length
EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_BATCH = 2_000
EXPORT_MAX_ROWS = 500_000


def _clean(name: str, description: str, definition: Any) -> tuple[str, str]:
    name = (name or "").strip()
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if len(name) > NAME_LENGTH:
        raise DomainError(
            _("The name is longer than %(n)d characters.") % {"n": NAME_LENGTH}, field="name"
        )
    description = (description or "").strip()
    if len(description) > DESCRIPTION_LENGTH:
        raise DomainError(
            _("The description is longer than %(n)d characters.") % {"n": DESCRIPTION_LENGTH},
            field="description",
        )
    validate_definition(definition)  # SegmentError names the bad part's JSON path
    return name, description


def _name_taken(name: str, exclude_pk: int | None = None) -> DomainError | None:
    qs = Segment.objects.filter(name=name)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        return DomainError(_("A segment with this name exists already."), field="name")
    return None


@transaction.atomic
def segment_create(*, name: str, description: str = "", definition: Any, user=None) -> Segment:
    """Raises DomainError for a missing, too long or taken name, SegmentError (a DomainError)
    for an invalid definition."""
    name, description = _clean(name, description, definition)
    if error := _name_taken(name):
        raise error
    return Segment.objects.create(
        name=name, description=description, definition=definition, created_by=user
    )


@transaction.atomic
def segment_update(*, segment: Segment, name: str, description: str, definition: Any) -> Segment:
    """Raises like segment_create. Snapshots keep the definition they were frozen with."""
    name, description = _clean(name, description, definition)
    if error := _name_taken(name, exclude_pk=segment.pk):
        raise error
    segment.name, segment.description, segment.definition = name, description, definition
    segment.save(update_fields=["name", "description", "definition", "updated_at"])
    return segment


def _copy_name(name: str) -> str:
    """`name (copy)`, then `name (copy 2)` …, cut to fit; one query for the taken names."""
    base = _("%(name)s (copy)") % {"name": name}
    if len(base) > NAME_LENGTH:
        base = _("%(name)s (copy)") % {"name": name[: NAME_LENGTH - (len(base) - NAME_LENGTH)]}
    stem = base[: NAME_LENGTH - 4]
    taken = set(Segment.objects.filter(name__startswith=stem).values_list("name", flat=True))
    if base not in taken:
        return base
    for n in range(2, 1000):
        candidate = f"{stem} {n}"
        if candidate not in taken:
            return candidate
    raise DomainError(_("Too many copies of this segment."), field="name")


@transaction.atomic
def segment_duplicate(*, segment: Segment, user=None) -> Segment:
    """A copy under a free name `… (copy)`, to be edited into a variant."""
    try:
        with transaction.atomic():
            return Segment.objects.create(
                name=_copy_name(segment.name),
                description=segment.description,
                definition=segment.definition,
                created_by=user,
            )
    except IntegrityError:  # someone took the name between our check and the insert
        raise DomainError(_("A segment with this name exists already."), field="name") from None


@transaction.atomic
def segment_delete(*, segment: Segment, user=None, ip: str | None = None) -> None:
    """Snapshots outlive their segment: campaigns that used one keep its members."""
    audit_record(
        actor=user,
        action=AuditLog.Action.DELETE,
        target=segment,
        summary=f"deleted segment {segment.name}",
        detail={"definition": segment.definition},
        ip=ip,
    )
    segment.delete()


@transaction.atomic
def segment_snapshot_create(
    *, segment: Segment, viewer: Viewer, name: str = "", as_of: datetime | None = None
) -> SegmentSnapshot:
    """Freeze the segment's members in the viewer's scope now, with one INSERT … SELECT.

    Raises SegmentError when the saved definition no longer compiles.
    """
    as_of = as_of or timezone.now()
    members = segment_members(segment.definition, viewer, as_of).order_by().values(member=F("pk"))
    name = (name or "").strip() or f"{segment.name} {timezone.localtime(as_of):%Y-%m-%d %H:%M}"
    snapshot = SegmentSnapshot.objects.create(
        segment=segment,
        name=name[:SNAPSHOT_NAME_LENGTH],
        definition=segment.definition,
        created_by_id=viewer.user_id,
    )
    sql, params = members.query.sql_with_params()
    table = connection.ops.quote_name(SnapshotMember._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (snapshot_id, customer_id) SELECT %s, m.member FROM ({sql}) m",
            [snapshot.pk, *params],
        )
        snapshot.size = cursor.rowcount
    snapshot.save(update_fields=["size"])
    return snapshot


# ---------------------------------------------------------------------------- export


@dataclass(frozen=True)
class Export:
    file: IO[bytes]  # a temporary file, read from the start; closing it deletes it
    filename: str
    content_type: str
    rows: int


def _header() -> list[str]:
    return [
        _("Name"),
        _("Phone"),
        _("Gender"),
        _("Region"),
        _("Lifecycle stage"),
        _("RFM group"),
        _("Tags"),
        _("Owner"),
        _("First seen"),
    ]


EXPORT_FIELDS = (
    "pk",
    "name",
    "phone",
    "gender",
    "province",
    "city",
    "stage",
    "rfm_group",
    "owner__name",
    "first_seen_at",
)


def _member_rows(segment: Segment, viewer: Viewer):
    """The rows of the members in the viewer's scope, by id, one batch in memory at a time.

    Each batch is one keyset query plus one query for its tags, so no cursor stays open and
    the query count grows with batches, not customers.
    """
    genders = dict(Customer.Gender.choices)
    stages = dict(Customer.Stage.choices)
    groups = dict(Customer.RfmGroup.choices)
    members = segment_members(segment.definition, viewer).order_by("pk").values_list(*EXPORT_FIELDS)
    last = 0
    while True:
        batch = list(members.filter(pk__gt=last)[:EXPORT_BATCH])
        if not batch:
            return
        last = batch[-1][0]
        tags: dict[int, list[str]] = {}
        links = (
            CustomerTag.objects.filter(customer_id__in=[row[0] for row in batch])
            .order_by("customer_id", "tag__group__order", "tag__order", "tag__name")
            .values_list("customer_id", "tag__name")
        )
        for customer_id, tag_name in links:
            tags.setdefault(customer_id, []).append(tag_name)
        for pk, name, phone, gender, province, city, stage, group, owner, first_seen in batch:
            if phone and not viewer.sees_full_pii:
                phone = mask_phone(phone)
            yield [
                name or f"#{pk}",
                phone,
                str(genders.get(gender, gender)) if gender else "",
                " ".join(part for part in (province, city) if part),
                str(stages.get(stage, stage)),
                str(groups.get(group, group)) if group else "",
                "、".join(tags.get(pk, [])),
                owner or "",
                timezone.localtime(first_seen).strftime("%Y-%m-%d %H:%M"),
            ]
        if len(batch) < EXPORT_BATCH:  # the last batch: no need to ask for an empty one
            return


def _write_csv(out: IO[bytes], lines) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")  # BOM: Excel reads UTF-8
    writer = csv.writer(text)
    rows = -1
    for rows, line in enumerate(lines):  # noqa: B007
        writer.writerow([escape_cell(cell) for cell in line])
    text.flush()
    text.detach()
    return rows


def _write_xlsx(out: IO[bytes], lines, title: str) -> int:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)  # rows go to a temporary file, not memory
    sheet = book.create_sheet(title)
    rows = -1
    for rows, line in enumerate(lines):  # noqa: B007
        sheet.append(
            [ILLEGAL_CHARACTERS_RE.sub("", escape_cell(cell))[:XLSX_CELL_LIMIT] for cell in line]
        )
    book.save(out)
    return rows


def segment_export(
    *, segment: Segment, viewer: Viewer, fmt: str, user=None, ip: str | None = None
) -> Export:
    """The segment's members in the viewer's scope as CSV (UTF-8 with BOM) or XLSX.

    Phones are masked unless the viewer may see them in full; cells a spreadsheet would run
    as formulas are escaped. The file is written to a temporary file, then the export is
    audited with its row count before any of it leaves. Raises DomainError for an unknown
    format or more than EXPORT_MAX_ROWS members, SegmentError for a broken definition.
    """
    if fmt not in EXPORT_FORMATS:
        raise DomainError(_("Unknown export format."), field="format")
    members = segment_members(segment.definition, viewer).order_by().values("pk")
    if members[: EXPORT_MAX_ROWS + 1].count() > EXPORT_MAX_ROWS:
        raise DomainError(
            _("More than %(max)s members: narrow the segment to export it.")
            % {"max": f"{EXPORT_MAX_ROWS:,}"}
        )
    lines = chain([_header()], _member_rows(segment, viewer))
    out = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it)
    try:
        rows = _write_csv(out, lines) if fmt == "csv" else _write_xlsx(out, lines, _("Members"))
        out.seek(0)
    except BaseException:
        out.close()
        raise
    audit_record(
        actor=user,
        action=AuditLog.Action.EXPORT,
        target=segment,
        summary=f"exported {rows} members of segment {segment.name} as {fmt}",
        detail={"rows": rows, "format": fmt, "masked": not viewer.sees_full_pii},
        ip=ip,
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    content_type = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Export(out, f"segment-{segment.pk}-{stamp}.{fmt}", content_type, rows)
