"""Read platform exports (CSV or XLSX) as a header and a stream of rows.

    with open_table(path) as table:          # csv or xlsx, decided by the file's content
        table.header                          # ["订单编号", "买家会员名", …]
        for row_number, values in table.rows():
            ...                               # row_number as a spreadsheet shows it

Nothing here holds the whole file: CSV is decoded a 1 MB block at a time and split into rows by
the csv module, XLSX is parsed by openpyxl in read-only (streaming) mode. The encoding and the
delimiter are detected from the first 2 MB (SAMPLE_BYTES); either can be forced. Every problem
with the file itself raises ImportFileError with a message that can be shown to the user as it
is; problems with single values are the row parser's business (rows.py).

Decisions worth knowing:
- The header is the first non-empty row; blank rows are skipped (they keep their numbers, so
  row numbers always match what a spreadsheet shows). A file with a header and no rows is
  valid: `rows()` yields nothing; the caller reports "0 rows".
- Trailing empty header cells (a trailing delimiter) are dropped. Rows are padded to the
  header's width, so `values[i]` exists for every header column; longer rows keep their extra
  cells. A column name that appears twice is an error naming it: guessing which one is meant
  could load the wrong data.
- CSV cells are `str` ("" when empty); XLSX cells are what openpyxl gives (str, int, float,
  datetime, bool or None). The row parser accepts both.
- XLSX formulas: data_only mode returns the value Excel cached when it last saved the file.
  A workbook written by a program that never calculated it (openpyxl, some exporters) has no
  cached value, so the cell reads as empty.
- Merged cells below the header read as the sheet shows them: every cell of the range holds
  the top-left cell's value (an ERP's order number merged over the order's item lines is on
  every line). A title bar above the header (values merged across several columns: a title,
  订单明细表, or groups, 订单信息 | 收货信息) is passed over: the header is the next non-empty
  row. openpyxl's read-only mode does not keep merges, so the sheet's XML is read through once
  more for its <mergeCells>.
- Broken files fail with the row named: bytes that do not decode in the chosen encoding, a
  NUL byte, a line that runs past MAX_ROW_BYTES without ending (checked per block, so a line
  is refused somewhere between 1 and 2 MB), a value past csv.field_size_limit() (128 K
  characters: an unclosed quote swallowing the rest of the file).
- A damaged workbook (a part cut short, bytes that fail their checksum) fails as "the
  workbook is damaged", naming the sheet and the last row read when the damage is met reading
  the header or streaming the rows (the rows before it have been handed out by then). Damage
  met while the workbook is opened (its list of sheets, its shared strings) is not tied to a
  sheet. The sheets are not read then: openpyxl's search for each one's <dimension> is
  skipped (_load_workbook).
- With no sheet chosen, the first sheet with data is read, unless it is plainly not a table
  (none of its first PROBE_ROWS non-empty rows has two values: a 说明 sheet of notes) and a
  later sheet has a header of several columns in its first PROBE_ROWS rows: that one is read.
"""

import array
import codecs
import csv
import io
import itertools
import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import charset_normalizer

from siyu.core.errors import DomainError

# Bytes sampled from the beginning of a CSV to detect its encoding and delimiter.
SAMPLE_BYTES = 2 * 1024 * 1024
# No real export has a row this long; beyond it a file is broken (an unclosed quote, no line
# breaks), and we stop before holding it in memory.
MAX_ROW_BYTES = 1024 * 1024
BLOCK_BYTES = 1024 * 1024  # read and decoded at once; lines are cut at the last "\n"
DELIMITERS = (",", "\t", ";", "|")
# Chinese exports are GBK; GB18030 is its superset (rare characters, 4-byte sequences), so
# decoding with it accepts every GBK file and more.
GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "euc_cn"}
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc)
CONTROL_CHARS = {chr(c) for c in range(32) if c not in (9, 10, 13)}
CJK = re.compile("[\u4e00-\u9fff]")  # GBK bytes rarely read as these in UTF-8
UTF8_CJK_LINE = re.compile("^[^\n\ufffd]*[\u4e00-\u9fff][^\n\ufffd]*$", re.M)
# Rows of a sheet looked at to decide whether it holds a table (XLSX, no sheet chosen).
PROBE_ROWS = 10
# What openpyxl and zipfile raise reading a damaged part: XML cut short or malformed
# (ElementTree's and lxml's ParseError are SyntaxErrors), a checksum or compressed stream that
# fails, a part or shared string that is missing, a value that does not convert. Anything else
# (MemoryError, a disk's OSError, a bug) is not about the file's content and passes through.
XLSX_DAMAGE = (
    SyntaxError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
)
DAMAGED_ADVICE = "open it in Excel or WPS and save it again, or export it again"
Cell = Any  # str | int | float | datetime | date | time | bool | None


class ImportFileError(DomainError):
    """The file cannot be read as a table; the message says why, in words for the user."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message, field="file", code="import_file")
        self.row = row


class _LineTooLong(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _BinaryLine(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Undecodable(Exception):
    def __init__(self, line: int, error: UnicodeDecodeError) -> None:
        self.line = line
        self.error = error


class _SwitchedToUtf8(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


_PROBLEMS = (_LineTooLong, _BinaryLine, _Undecodable, _SwitchedToUtf8, csv.Error)


class Table:
    """An open CSV or XLSX: `header`, `rows()`, and what was detected. Close it (or use `with`)."""

    kind: str  # "csv" | "xlsx"
    header: list[str]
    header_row: int  # the row number of the header, 1 unless blank rows precede it
    header_values: list[Cell]  # the header row as read, for files whose first row is data
    encoding: str | None  # csv: the codec used; xlsx: None
    delimiter: str | None  # csv only
    sheet: str | None  # xlsx: the sheet read
    sheet_names: list[str]  # xlsx: every worksheet, in order; csv: []

    def rows(self, include_header: bool = False) -> Iterator[tuple[int, list[Cell]]]:
        """Yield (row_number, values) for each non-empty row after the header, once.

        include_header=True yields the header row first, as data (a phone list without a
        header: see presets.Mapping.first_row_is_data).
        """
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(
    path: str | os.PathLike,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> Table:
    """Open a CSV or XLSX file and read its header.

    encoding/delimiter override detection (CSV); sheet picks a worksheet by name or 0-based
    index (XLSX; default: the first sheet with data). Raises ImportFileError.
    """
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"cannot open the file: {exc.strerror}") from exc
    try:
        magic = f.read(8)
        f.seek(0)
        if magic.startswith(ZIP_MAGIC):
            return XlsxTable(f, sheet=sheet)
        if magic.startswith(OLE_MAGIC):
            raise ImportFileError(
                "this is an old Excel .xls file; open it in Excel or WPS and save it as .xlsx "
                "or .csv (UTF-8), then upload it again"
            )
        return CsvTable(f, encoding=encoding, delimiter=delimiter)
    except BaseException:
        f.close()
        raise


# --------------------------------------------------------------------------------------------
# CSV


class CsvTable(Table):
    kind = "csv"

    def __init__(self, f: io.BufferedReader, *, encoding: str | None, delimiter: str | None):
        self._file = f
        self.sheet, self.sheet_names = None, []
        sample = f.read(SAMPLE_BYTES)
        truncated = len(sample) == SAMPLE_BYTES
        start = 0
        if sample.startswith(codecs.BOM_UTF8):
            start, detected = 3, "utf-8-sig"
        elif sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            detected = "utf-16"
        else:
            detected = None
        if not sample[start:].strip():
            raise ImportFileError("the file is empty")
        if detected is None and b"\x00" in sample:
            raise ImportFileError(
                "the file contains binary data (NUL bytes); it is not a CSV text file — "
                "upload a .csv or .xlsx export"
            )
        if encoding:
            codec = _codec_for(encoding)
            if codec == "utf-8" and start:
                codec = "utf-8-sig"
        else:
            codec = detected or _detect_encoding(sample, truncated)
        self.encoding = codec
        # UTF-16 is the only codec we meet whose bytes may contain "\n" inside a character.
        self._by_bytes = not codec.startswith(("utf-16", "utf-32"))
        if self._by_bytes and codec == "utf-8-sig":
            codec, start = "utf-8", 3 if sample.startswith(codecs.BOM_UTF8) else 0
        self._codec = codec
        self._start = start if self._by_bytes else 0
        self.delimiter = delimiter or _sniff_delimiter(sample[start:], codec, truncated)
        if len(self.delimiter) != 1:
            raise ImportFileError(f"the delimiter must be one character, not {delimiter!r}")
        f.seek(self._start)
        self._records = csv.reader(self._lines(), delimiter=self.delimiter, strict=False)
        self._count = 0
        self._started = False
        header = self._next_nonempty()
        if header is None:
            raise ImportFileError("the file is empty")
        self.header_row, raw = header
        if raw and raw[0].startswith("\ufeff"):  # a BOM read with an encoding forced by hand
            raw[0] = raw[0][1:]
        self.header_values = list(raw)
        self.header = _clean_header(raw)

    def _lines(self) -> Iterator[str]:
        """Decoded lines for csv.reader, a block at a time (C speed), stopping at bad input.

        A block is cut after its last line break; a problem in it (bytes that do not decode,
        a NUL, a line that never ends) first lets the good lines before it through, so the
        error is raised while csv is reading exactly the row that has the problem.
        """
        if not self._by_bytes:
            return self._text_lines()
        return itertools.chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[Iterator[str]]:
        read, codec = self._file.read, self._codec
        # UTF-8 bytes decode as GB18030 too, into mojibake: such lines are looked for instead.
        gb = codecs.lookup(codec).name in GB_FAMILY
        pending = b""
        lines_before = 0  # physical lines already handed to csv
        while True:
            block = read(BLOCK_BYTES)
            data = pending + block if pending else block
            if not data:
                return
            cut = data.rfind(b"\n") + 1 if block else len(data)
            complete, pending = data[:cut], data[cut:]
            if len(pending) > MAX_ROW_BYTES:  # a line that does not end
                yield self._decoded(complete, codec)
                raise _LineTooLong(lines_before + complete.count(b"\n") + 1)
            problem: Exception | None = None
            bad = complete.find(b"\x00")  # csv accepts NUL since Python 3.11; exports do not
            try:
                text = complete[:bad].decode(codec) if bad >= 0 else complete.decode(codec)
            except UnicodeDecodeError as exc:
                bad, problem = exc.start, exc
            if bad >= 0:
                good = complete[: complete.rfind(b"\n", 0, bad) + 1]
                line = lines_before + good.count(b"\n") + 1
                yield self._decoded(good, codec)
                if problem is None:
                    raise _BinaryLine(line)
                raise _Undecodable(line, problem)
            if gb and (switch := _first_utf8_line(complete)) >= 0:
                yield self._decoded(complete[:switch], codec)
                raise _SwitchedToUtf8(lines_before + complete.count(b"\n", 0, switch) + 1)
            yield io.StringIO(text, newline="\n")
            lines_before += complete.count(b"\n")

    @staticmethod
    def _decoded(data: bytes, codec: str) -> Iterator[str]:
        return io.StringIO(data.decode(codec), newline="\n")

    def _text_lines(self) -> Iterator[str]:
        """UTF-16 and the like, whose bytes may hold "\n" inside a character: line by line."""
        text = io.TextIOWrapper(self._file, encoding=self._codec, newline="")
        line_number = 0
        while True:
            try:
                line = text.readline(MAX_ROW_BYTES + 1)
            except UnicodeDecodeError as exc:  # the decoder reads ahead: the line is a guess
                raise _Undecodable(line_number + 1, exc) from exc
            if not line:
                return
            line_number += 1
            if len(line) > MAX_ROW_BYTES:
                raise _LineTooLong(line_number)
            if "\x00" in line:
                raise _BinaryLine(line_number)
            yield line

    def _file_error(self, exc: Exception, row: int) -> ImportFileError:
        if isinstance(exc, _LineTooLong):
            message = (
                f"row {row} is longer than {MAX_ROW_BYTES // 1024 // 1024} MB (line "
                f"{exc.line} of the file); the file is broken — look for a quote that is "
                "never closed, or missing line breaks"
            )
        elif isinstance(exc, _Undecodable):
            bad = exc.error.object[exc.error.start : exc.error.start + 4]
            message = (
                f"row {row} (line {exc.line} of the file) cannot be decoded as "
                f"{self.encoding}: bytes {bad.hex(' ')}; the file mixes encodings or the "
                "encoding chosen is wrong — save it again as UTF-8 or choose another encoding"
            )
        elif isinstance(exc, _SwitchedToUtf8):
            message = (
                f"row {row} (line {exc.line} of the file) is UTF-8 while the rows before it are "
                f"{self.encoding}: the file mixes encodings — save it again as UTF-8, or choose "
                "the encoding of most of its rows"
            )
        elif isinstance(exc, _BinaryLine):
            message = (
                f"row {row} (line {exc.line} of the file) contains binary data (NUL bytes); "
                "this is not a CSV text file"
            )
        elif "field larger" in str(exc):
            message = (
                f"row {row} has a value longer than {csv.field_size_limit():,} characters; "
                "look for a quote that is never closed"
            )
        else:
            message = f"row {row} is not valid CSV ({exc})"
        return ImportFileError(message, row=row)

    def _next_nonempty(self) -> tuple[int, list[str]] | None:
        try:
            for record in self._records:
                self._count += 1
                if any(record):
                    return self._count, record
        except _PROBLEMS as exc:
            raise self._file_error(exc, self._count + 1) from None
        return None

    def rows(self, include_header: bool = False) -> Iterator[tuple[int, list[str]]]:
        if self._started:
            raise RuntimeError("Table.rows() reads the file once; open the table again")
        self._started = True
        width = len(self.header)
        if include_header:
            yield self.header_row, _padded(list(self.header_values), width, "")
        count = self._count
        try:
            for record in self._records:
                count += 1
                if not any(record):
                    continue
                if len(record) < width:
                    record += [""] * (width - len(record))
                yield count, record
        except _PROBLEMS as exc:
            raise self._file_error(exc, count + 1) from None

    def close(self) -> None:
        self._file.close()


def _codec_for(name: str) -> str:
    try:
        codec = codecs.lookup(name.strip()).name
    except LookupError:
        raise ImportFileError(f"unknown encoding {name!r}; use utf-8, gbk or gb18030") from None
    return "gb18030" if codec in GB_FAMILY else codec


def _detect_encoding(sample: bytes, truncated: bool) -> str:
    """UTF-8 if the sample is UTF-8, else what charset-normalizer finds, GB18030 preferred.

    Mainland exports come first: a sample that decodes cleanly as GB18030 is read as GB18030,
    whatever the statistics say. Big5 (Taiwan, Hong Kong) therefore needs encoding="big5".
    """
    if truncated:  # do not judge a character cut in half at the end of the sample
        sample = sample[: sample.rfind(b"\n") + 1] or sample[:-4]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A long stretch of valid multi-byte UTF-8 before the first bad byte means a UTF-8 file
        # with something else pasted in later: read it as UTF-8 and name the bad row, rather
        # than silently turning the whole file into mojibake.
        head = sample[: exc.start].decode("utf-8")
        if sum(1 for ch in head if ord(ch) > 127) >= 8:
            return "utf-8"
    if mixed := _mixed_encodings(sample):
        raise ImportFileError(mixed)
    best = charset_normalizer.from_bytes(sample).best()
    found = codecs.lookup(best.encoding).name if best else None
    if found in GB_FAMILY:
        return "gb18030"
    try:
        # Short GBK samples are often taken for cp949/Big5 by statistics; a Chinese product
        # reads Chinese files, so GB18030 wins whenever it decodes the sample cleanly.
        text = sample.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is not None and not CONTROL_CHARS.intersection(text):
        return "gb18030"
    if found is None or CONTROL_CHARS.intersection(sample.decode(found, errors="replace")):
        raise ImportFileError(
            "the file is not text in a known encoding (UTF-8, GBK, GB18030); "
            "it may be a binary file renamed to .csv"
        )
    return found


def _first_utf8_line(data: bytes) -> int:
    """Where the first line of Chinese in UTF-8 starts in `data` (read as GB18030), or -1.

    Read as UTF-8, GB18030 text turns into replacement characters; a line with CJK and none of
    them was written in UTF-8. One regular expression over the block: ~1 µs a row.
    """
    text = data.decode("utf-8", errors="replace")
    found = UTF8_CJK_LINE.search(text)
    if found is None:
        return -1
    offset = 0  # line breaks survive the decoding one for one: count to the line's start
    for _ in range(text.count("\n", 0, found.start())):
        offset = data.index(b"\n", offset) + 1
    return offset


def _mixed_encodings(sample: bytes) -> str | None:
    """A message when some lines of the sample are Chinese in UTF-8 and others GBK/GB18030:
    rows pasted from another file. UTF-8 bytes also decode as GB18030, into mojibake, so the
    sample as a whole would pass for GB18030 and those rows' names would be garbled."""
    utf8 = gb = 0  # the first line in each
    for number, line in enumerate(sample.split(b"\n"), 1):
        if line.isascii():
            continue
        try:
            if CJK.search(line.decode("utf-8")):
                utf8 = utf8 or number
            continue
        except UnicodeDecodeError:
            pass
        try:
            line.decode("gb18030")
        except UnicodeDecodeError:
            return None  # neither: some other encoding
        gb = gb or number
    if not (utf8 and gb):
        return None
    return (
        f"the file mixes encodings: line {gb} is GBK/GB18030 and line {utf8} is UTF-8 — save "
        "it again as UTF-8, or choose the encoding of most of its rows"
    )


def _sniff_delimiter(sample: bytes, codec: str, truncated: bool) -> str:
    """The candidate that splits the first rows into the most, and most consistent, columns."""
    head = sample[: 64 * 1024]
    if truncated or len(sample) > len(head):
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    text = head.decode("utf-16" if codec.startswith("utf-16") else codec, errors="replace")
    best, best_score = ",", (0.0, 0)
    for candidate in DELIMITERS:
        reader = csv.reader(io.StringIO(text), delimiter=candidate, strict=False)
        try:
            widths = [len(r) for _, r in zip(range(30), reader, strict=False) if any(r)]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        rest = widths[1:-1] if truncated else widths[1:]  # the last row may be cut
        consistent = sum(w == widths[0] for w in rest) / len(rest) if rest else 1.0
        score = (consistent, widths[0])
        if score > best_score:
            best, best_score = candidate, score
    return best


def _clean_header(raw: list[Cell]) -> list[str]:
    header = ["" if v is None else str(v).strip() for v in raw]
    while header and not header[-1]:
        header.pop()
    return header  # a name given twice is an error only where it is imported (build_mapping)


def column_letter(index: int) -> str:
    """A column's letter as a spreadsheet shows it: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _padded(values: list[Cell], width: int, filler: Cell) -> list[Cell]:
    if len(values) < width:
        values += [filler] * (width - len(values))
    return values


# --------------------------------------------------------------------------------------------
# XLSX


class XlsxTable(Table):
    kind = "xlsx"
    encoding = None
    delimiter = None

    def __init__(self, f: io.BufferedReader, *, sheet: str | int | None):
        self._file = f
        self._book = _load_workbook(f)
        try:
            self._open_sheet(sheet)
        except BaseException:
            self._book.close()
            raise
        self._started = False

    def _open_sheet(self, sheet: str | int | None) -> None:
        sheets = [ws for ws in self._book.worksheets if hasattr(ws, "iter_rows")]
        if not sheets:  # openpyxl leaves out a sheet whose part is missing from the archive
            raise ImportFileError(
                f"the workbook has no worksheet that can be read; it may be damaged — "
                f"{DAMAGED_ADVICE}"
            )
        self.sheet_names = [ws.title for ws in sheets]
        listing = ", ".join(self.sheet_names)
        if sheet is None:
            candidates = sheets
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise ImportFileError(
                    f"the workbook has {len(sheets)} sheets, there is no sheet number "
                    f"{sheet + 1}; sheets: {listing}"
                )
            candidates = [sheets[sheet]]
        else:
            candidates = [ws for ws in sheets if ws.title == sheet]
            if not candidates:
                raise ImportFileError(f"there is no sheet named {sheet!r}; sheets: {listing}")
        chosen = None  # (sheet, (row number, values) of its header)
        for ws in candidates:
            ws.reset_dimensions()  # exporters write wrong <dimension>s; they would cut rows
            if chosen is None:
                head = self._head(ws, count=PROBE_ROWS if sheet is None else 1)
                if not head:
                    continue
                chosen = ws, head[0]
                if sheet is not None or any(_width(values) > 1 for _, values in head):
                    break
            else:
                # The first sheet with data is one column of text at most (notes, a title):
                # a later sheet that starts with a header of several columns is the table.
                head = self._head(ws, count=1, max_row=PROBE_ROWS)
                if head and _width(head[0][1]) > 1:
                    chosen = ws, head[0]
                    break
        if chosen is None:
            where = "the sheet is empty" if sheet is not None else "every sheet is empty"
            raise ImportFileError(f"the workbook has no data: {where}; sheets: {listing}")
        self._sheet, (self.header_row, raw) = chosen
        self._merges = _merged_ranges(self._sheet)
        title = _title_bar(self.header_row, raw, self._merges)
        if title is not None:  # the header is the first row below it
            below = self._head(self._sheet, count=1, first=title + 1, max_row=title + PROBE_ROWS)
            if below:
                self.header_row, raw = below[0]
        self.sheet = self._sheet.title
        self.header_values = raw
        self.header = _clean_header(raw)

    def _head(
        self, ws: Any, *, count: int, first: int = 1, max_row: int | None = None
    ) -> list[tuple[int, list[Cell]]]:
        """The sheet's first `count` non-empty rows from `first` (up to row `max_row`)."""
        found: list[tuple[int, list[Cell]]] = []
        with closing(self._read(ws, first=first, last=max_row)) as rows:
            for number, values in rows:
                if _has_value(values):
                    found.append((number, list(values)))
                    if len(found) == count:
                        break
        return found

    @staticmethod
    def _read(
        ws: Any, *, first: int = 1, last: int | None = None
    ) -> Iterator[tuple[int, tuple[Cell, ...]]]:
        """(row_number, values) for the sheet's rows from `first`. Damage found on the way is
        an ImportFileError naming the sheet and the last row read."""
        rows = ws.iter_rows(min_row=first, max_row=last, values_only=True)
        number = first - 1
        try:
            for values in rows:
                number += 1
                yield number, values
        except XLSX_DAMAGE as exc:
            place = f" after row {number}" if number else ""
            raise ImportFileError(
                f"the workbook is damaged: sheet {ws.title} cannot be read{place} "
                f"({_detail(exc)}); {DAMAGED_ADVICE}",
                row=number + 1,
            ) from exc
        finally:
            rows.close()  # the sheet's part in the archive, when the caller stops early

    def rows(self, include_header: bool = False) -> Iterator[tuple[int, list[Cell]]]:
        if self._started:
            raise RuntimeError("Table.rows() reads the file once; open the table again")
        self._started = True
        width = len(self.header)
        first = self.header_row if include_header else self.header_row + 1
        below = self._merges[:, 0].searchsorted(self.header_row, side="right")
        merges = self._merges[below:]  # the ranges below the header (a view, not a copy)
        with closing(self._read(self._sheet, first=first)) as rows:
            table = (
                (number, _padded(list(values), width, None))
                for number, values in rows
                if _has_value(values)
            )
            yield from _filled(table, merges) if len(merges) else table

    def close(self) -> None:
        self._book.close()
        self._file.close()


# A sheet's merged ranges: rows of (top row, bottom row, left column, right column), 1-based as
# in the sheet, int32 and sorted by top row. An ERP's export of a million lines can hold
# millions of them: 16 bytes each here, ~140 as Python tuples.
Merges = Any  # numpy.ndarray of shape (n, 4)
MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?"')


def _merged_ranges(ws: Any) -> Merges:
    """The sheet's merged ranges of more than one cell.

    They follow the rows in the sheet's XML (<mergeCells> after </sheetData>): the part is
    decompressed once more and searched for that tag, without parsing the rows. Damage met here
    is left to the reading of the rows, which names the row where it is.
    """
    import numpy as np

    found = array.array("i")
    tail, after_rows = b"", False
    try:
        with ws._get_source() as source:
            while block := source.read(BLOCK_BYTES):
                data = tail + block
                if not after_rows:
                    end = _sheet_data_end(data)
                    if end == -1:
                        tail = data[-64:]  # a tag cut between two blocks
                        continue
                    after_rows, data = True, data[end:]
                cut = data.rfind(b"<")  # the last tag may go on in the next block
                tail, data = (data[cut:], data[:cut]) if cut >= 0 else (b"", data)
                _merges_in(data, found)
            if after_rows:
                _merges_in(tail, found)
    except (*XLSX_DAMAGE, OverflowError):  # OverflowError: a range past any sheet's rows
        found = array.array("i")
    merges = np.frombuffer(found, dtype=np.int32).reshape(-1, 4)
    if len(merges) and (np.diff(merges[:, 0]) < 0).any():
        merges = merges[np.argsort(merges[:, 0], kind="stable")]
    return merges


def _merges_in(xml: bytes, found: array.array) -> None:
    """Add the ranges of more than one cell among the <mergeCell>s in `xml` to `found`."""
    from openpyxl.utils import column_index_from_string as column

    for m in MERGE_CELL.finditer(xml):
        left, top = column(m[1].decode()), int(m[2])
        right, bottom = (column(m[3].decode()), int(m[4])) if m[3] else (left, top)
        if (right, bottom) != (left, top):
            found.extend((top, bottom, left, right))


def _sheet_data_end(data: bytes) -> int:
    """Where </sheetData> (with any namespace prefix) is in `data`, or -1."""
    at = data.find(b"sheetData>")
    while at != -1:
        if data[data.rfind(b"<", 0, at) + 1 : at + 1].startswith(b"/"):
            return at
        at = data.find(b"sheetData>", at + 1)
    return -1


def _title_bar(row: int, values: list[Cell], merges: Merges) -> int | None:
    """The last row of a title bar, when `row` is one: each of its values merged across
    columns (a title over the table, or groups over the header: 订单信息 | 收货信息)."""
    across = merges[(merges[:, 0] == row) & (merges[:, 3] > merges[:, 2])].tolist()
    spans = {(left, top): bottom for top, bottom, left, _right in across}
    bottoms = [
        spans.get((column, row)) for column, v in enumerate(values, 1) if v is not None and v != ""
    ]
    if not bottoms or None in bottoms:
        return None
    return max(bottoms)


def _filled(
    rows: Iterable[tuple[int, list[Cell]]], merges: Merges
) -> Iterator[tuple[int, list[Cell]]]:
    """Rows with each merged range's top-left value in every cell of the range."""
    tops = merges[:, 0]
    next_range = 0
    active: list[tuple[int, int, int, Cell]] = []  # (bottom, left, right, value)
    for number, values in rows:
        active = [a for a in active if a[0] >= number]
        while next_range < len(merges) and tops[next_range] <= number:
            top, bottom, left, right = merges[next_range].tolist()
            next_range += 1
            # A range whose top row is empty (and so never read) has nothing to spread.
            if top == number and left <= len(values):
                active.append((bottom, left, right, values[left - 1]))
        for _bottom, left, right, value in active:
            values[left - 1 : right] = [value] * (min(right, len(values)) - left + 1)
        yield number, values


def _load_workbook(f: io.BufferedReader) -> Any:
    """The workbook in read-only mode; the sheets' rows are parsed only as they are read."""
    from openpyxl import load_workbook

    _shortcut_openpyxl()
    try:
        return load_workbook(f, read_only=True, data_only=True)
    except zipfile.BadZipFile as exc:
        if "not a zip file" in str(exc):  # starts like a ZIP, no directory at the end: cut short
            raise ImportFileError(
                "the workbook is incomplete (the end of the file is missing); upload it "
                f"again, or {DAMAGED_ADVICE}"
            ) from exc
        raise _damaged(exc) from exc  # a part whose bytes fail their checksum, and the like
    except (SyntaxError, zlib.error, EOFError) as exc:
        raise _damaged(exc) from exc
    except (KeyError, ValueError, OSError) as exc:
        raise ImportFileError(
            "the file is a ZIP archive but not an Excel workbook (.xlsx) we can read"
        ) from exc
    except Exception as exc:  # openpyxl raises many kinds on malformed parts
        raise ImportFileError(f"the Excel workbook cannot be read: {exc}") from exc


def _shortcut_openpyxl() -> None:
    """Two shortcuts through openpyxl's reading, each giving the same values faster.

    - openpyxl looks for each sheet's <dimension> as the workbook opens and parses a sheet
      written without one (its own write-only mode, several exporters) to the end: 30 s per
      million rows at every opening. The dimensions are reset before reading anyway.
    - A cell holding its string inline (<is>; how openpyxl and Java's streaming exporters
      write every string) becomes a rich-text object before its text is taken: half the time
      of reading such a sheet. _InlineText takes the text alone.
    """
    from openpyxl.worksheet import _reader
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    ReadOnlyWorksheet._get_size = _no_dimensions
    _reader.Text = _InlineText


def _no_dimensions(sheet: Any) -> None:
    """ReadOnlyWorksheet._get_size, skipped: the sheet's size is unknown until it is read."""


SHEET_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


class _InlineText:
    """openpyxl's Text (cell.text), read for its `content` only: the plain <t>, then each
    run's <t>; phonetic guides (<rPh>) left out, as openpyxl does."""

    def __init__(self, content: str) -> None:
        self.content = content

    @classmethod
    def from_tree(cls, node: Any) -> "_InlineText":
        plain = node.findtext(f"{SHEET_MAIN}t") or ""
        runs = (run.findtext(f"{SHEET_MAIN}t") or "" for run in node.iterfind(f"{SHEET_MAIN}r"))
        return cls(plain + "".join(runs))


def _damaged(exc: Exception) -> ImportFileError:
    return ImportFileError(f"the workbook is damaged: {_detail(exc)}; {DAMAGED_ADVICE}")


def _detail(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _width(values: Iterable[Cell]) -> int:
    """How many cells hold a value."""
    return sum(1 for v in values if v is not None and v != "")


def _has_value(values: tuple[Cell, ...]) -> bool:
    return any(v is not None and v != "" for v in values)
