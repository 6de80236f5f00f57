"""Build import files on the fly (no binary fixtures in the repository)."""

import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook


def csv_text(rows: Iterable[Sequence[Any]], delimiter: str = ",") -> str:
    """Rows as CSV text with CRLF line ends, quoting only what needs it."""
    lines = []
    for row in rows:
        cells = []
        for value in row:
            text = "" if value is None else str(value)
            if any(c in text for c in (delimiter, '"', "\n", "\r")):
                text = '"' + text.replace('"', '""') + '"'
            cells.append(text)
        lines.append(delimiter.join(cells))
    return "\r\n".join(lines) + "\r\n"


def write_csv(
    path: Path,
    rows: Iterable[Sequence[Any]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    data = csv_text(rows, delimiter).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_xlsx(
    path: Path,
    sheets: dict[str, list[Sequence[Any]]],
    *,
    merged: dict[str, list[str]] | None = None,
) -> Path:
    """A workbook with one sheet per item, written by openpyxl (formulas get no cached value)."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
        for cells in (merged or {}).get(title, []):
            sheet.merge_cells(cells)
    book.save(path)
    return path


def _cell_xml(ref: str, value: Any) -> str:
    """A cell: str → inline string, number → number, ("=formula", cached) → formula + value,
    [str, …] → inline rich text, one run per string, with a phonetic guide as Excel adds."""
    if isinstance(value, list):
        runs = "".join(f"<r><rPr><b/></rPr><t>{escape(text)}</t></r>" for text in value)
        guide = '<rPh sb="0" eb="1"><t>ピン</t></rPh>'
        return f'<c r="{ref}" t="inlineStr"><is>{runs}{guide}</is></c>'
    if isinstance(value, tuple):
        formula, cached = value
        kind = ' t="str"' if isinstance(cached, str) else ""
        return f'<c r="{ref}"{kind}><f>{escape(formula[1:])}</f><v>{escape(str(cached))}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def write_xlsx_by_hand(
    path: Path,
    rows: list[Sequence[Any]],
    sheet: str = "Sheet1",
    *,
    merged: Sequence[str] = (),
    prefixed: bool = False,
) -> Path:
    """A minimal workbook as Excel saves it, with cached formula results.

    openpyxl cannot write the value Excel caches beside a formula, so the XML is written here:
    a cell given as ("=B2*2", 20) holds the formula and its cached result. `merged` ranges
    follow the rows, as in Excel's files; `prefixed` writes the sheet's elements as x:row,
    x:c…, as some .NET exporters do.
    """
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    body = "".join(
        f'<row r="{r}">'
        + "".join(_cell_xml(f"{chr(65 + c)}{r}", v) for c, v in enumerate(values) if v is not None)
        + "</row>"
        for r, values in enumerate(rows, 1)
    )
    merges = "".join(f'<mergeCell ref="{cells}"/>' for cells in merged)
    merges = f'<mergeCells count="{len(merged)}">{merges}</mergeCells>' if merged else ""
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{ct}.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{main}"><dimension ref="A1"/>'
            f"<sheetData>{body}</sheetData>{merges}</worksheet>"
        ),
    }
    if prefixed:
        worksheet = re.sub(r"<(/?)(?=[a-z])", r"<\1x:", parts["xl/worksheets/sheet1.xml"])
        parts["xl/worksheets/sheet1.xml"] = worksheet.replace("xmlns=", "xmlns:x=")
    with zipfile.ZipFile(path, "w") as archive:
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + xml)
    return path
