"""The error report: the rows that failed, as the user uploaded them, with what is wrong.

One line per failed row: 行号 (the row number in the uploaded file), 出错列 (the columns at
fault), 错误原因 (the reasons), then the row's original columns. A user fixes the cells and
uploads the report itself again: the three extra columns are ignored by the mapping.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a
leading single quote, in both formats, so opening a report never executes a value a customer
typed into a shop form. Rows are written as they come: neither format holds the report in
memory (XLSX uses openpyxl's write-only mode).
"""

import csv
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

REPORT_COLUMNS = ("行号", "出错列", "错误原因")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_CELL_LIMIT = 32767


class _Error(Protocol):
    column: str
    reason: str


class FailedRow(Protocol):
    """What the report needs of a row; rows.ParsedRow is one."""

    row: int
    values: Sequence[Any]
    errors: Sequence[_Error]


def escape_cell(value: Any) -> str:
    """The cell as text that no spreadsheet will evaluate."""
    text = _as_text(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def write_error_report(
    path: str | os.PathLike,
    header: Sequence[str],
    failed_rows: Iterable[FailedRow],
    fmt: str = "csv",
) -> int:
    """Write the failed rows to `path` as "csv" (UTF-8 with BOM) or "xlsx"; return the count."""
    if fmt == "csv":
        return _write_csv(Path(path), header, failed_rows)
    if fmt == "xlsx":
        return _write_xlsx(Path(path), header, failed_rows)
    raise ValueError(f"fmt must be 'csv' or 'xlsx', not {fmt!r}")


def _lines(header: Sequence[str], failed_rows: Iterable[FailedRow]) -> Iterable[list[str]]:
    width = len(header)
    yield [escape_cell(c) for c in (*REPORT_COLUMNS, *header)]
    for failed in failed_rows:
        columns = "、".join(dict.fromkeys(e.column for e in failed.errors if e.column))
        reasons = "；".join(
            f"{e.column}: {e.reason}" if e.column else e.reason for e in failed.errors
        )
        values = list(failed.values)
        if len(values) < width:
            values += [None] * (width - len(values))
        yield [escape_cell(c) for c in (failed.row, columns, reasons, *values)]


def _write_csv(path: Path, header: Sequence[str], failed_rows: Iterable[FailedRow]) -> int:
    count = -1
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        for count, line in enumerate(_lines(header, failed_rows)):  # noqa: B007
            writer.writerow(line)
    return count


def _write_xlsx(path: Path, header: Sequence[str], failed_rows: Iterable[FailedRow]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    sheet = book.create_sheet("错误行")
    count = -1
    for count, line in enumerate(_lines(header, failed_rows)):  # noqa: B007
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c)[:XLSX_CELL_LIMIT] for c in line])
    book.save(path)
    return count


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone stored as a number, not 13812341234.0
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
