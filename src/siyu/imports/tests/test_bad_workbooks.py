"""Damaged XLSX files (a part cut short, bytes that fail their checksum) are refused with a
message for the user — when the workbook is opened, when its header is read and while its rows
stream — in the reader, the console and the command."""

import io
import re
import struct
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from siyu.customers.models import Customer
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports.models import ImportJob
from siyu.imports.readers import ImportFileError, open_table
from siyu.imports.tests.files import write_xlsx, write_xlsx_by_hand

SHEET = "xl/worksheets/sheet1.xml"
HEADER = ["姓名", "手机号", "性别", "生日", "城市"]  # a member list: the member_list preset
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def members(count: int) -> list[list[str]]:
    return [
        HEADER,
        *([f"会员{i}", f"138{i:08d}", "女", "1990-01-02", "上海"] for i in range(count)),
    ]


def workbook(path: Path, count: int, *, stored: bool = False) -> Path:
    """Sheet 会员 with `count` members; stored=True keeps the parts uncompressed."""
    write_xlsx(path, {"会员": members(count)})
    if stored:
        with_part(path, SHEET, lambda xml: xml, compression=zipfile.ZIP_STORED)
    return path


def with_part(path: Path, name: str, change, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Rewrite the workbook with the part `name` replaced by change(its bytes)."""
    with zipfile.ZipFile(path) as archive:
        parts = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", compression) as archive:
        for filename, data in parts:
            archive.writestr(filename, change(data) if filename == name else data)
    return path


def cut_sheet(path: Path, keep) -> Path:
    """The sheet's XML cut short after keep(xml) bytes, as a crashed writer leaves it."""
    return with_part(path, SHEET, lambda xml: xml[: keep(xml)])


def sheet_bytes(path: Path) -> tuple[bytearray, int, int, int]:
    """(the archive's bytes, where the sheet's stored data starts and ends, how it is stored)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(SHEET)
    header = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    start = header + 30 + name_length + extra_length
    return data, start, start + info.compress_size, info.compress_type


def flip_digit(path: Path, at: float) -> Path:
    """Change one digit of a phone number `at` (0..1) of the way into the uncompressed sheet:
    the XML stays well formed, only the part's checksum no longer matches."""
    data, start, end, compression = sheet_bytes(path)
    assert compression == zipfile.ZIP_STORED
    digit = data.index(b"138", start + int((end - start) * at)) + 3
    assert digit < end
    data[digit] = ord("9") if data[digit] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    return path


def read_all(path: Path) -> list:
    with open_table(path) as table:
        return list(table.rows())


# --- the reader -----------------------------------------------------------------------------


def test_a_sheet_cut_short_inside_its_header_is_refused_when_opened_naming_the_sheet(tmp_path):
    path = cut_sheet(workbook(tmp_path / "m.xlsx", 3), lambda xml: xml.index("手机号".encode()))

    with pytest.raises(ImportFileError) as exc:
        open_table(path)

    assert exc.value.message.startswith("the workbook is damaged: sheet 会员 cannot be read (")
    assert "save it again" in exc.value.message


def test_a_sheet_cut_short_halfway_reads_its_first_rows_then_names_the_sheet_and_row(tmp_path):
    path = cut_sheet(workbook(tmp_path / "m.xlsx", 3000), lambda xml: len(xml) // 2)
    read = []

    with open_table(path) as table:
        assert table.header == HEADER
        with pytest.raises(ImportFileError) as exc:
            for number, _values in table.rows():
                read.append(number)

    last = read[-1]
    assert 1000 < last < 2000 and read == list(range(2, last + 1))
    assert exc.value.row == last + 1
    assert exc.value.message.startswith(
        f"the workbook is damaged: sheet 会员 cannot be read after row {last} ("
    )


def test_a_sheet_without_dimension_cut_short_opens_and_names_the_row_where_it_breaks(tmp_path):
    # Written as openpyxl's write-only mode does, with no <dimension>: opening the workbook
    # must not read the whole sheet (which also met the damage before any row was read).
    path = with_part(
        workbook(tmp_path / "m.xlsx", 3000),
        SHEET,
        lambda xml: re.sub(rb"<dimension[^>]*>", b"", xml),
    )
    path = cut_sheet(path, lambda xml: len(xml) // 2)

    with open_table(path) as table, pytest.raises(ImportFileError) as exc:
        assert table.header == HEADER
        list(table.rows())

    assert exc.value.message.startswith("the workbook is damaged: sheet 会员 cannot be read after")
    assert 1000 < exc.value.row < 2000


def test_a_merged_range_past_the_last_row_a_sheet_can_have_is_refused_as_damage(tmp_path):
    # Read past its header before the range is met (it follows the rows in the XML).
    rows = [HEADER, *members(30)[1:]]
    path = write_xlsx_by_hand(tmp_path / "m.xlsx", rows, merged=["A2:A99999999999"])

    with open_table(path) as table, pytest.raises(ImportFileError) as exc:
        assert table.header == HEADER
        list(table.rows())

    assert exc.value.message.startswith("the workbook is damaged: sheet Sheet1 cannot be read")


def test_a_part_that_fails_its_checksum_at_the_end_of_the_sheet_is_refused_while_streaming(
    tmp_path,
):
    path = flip_digit(workbook(tmp_path / "m.xlsx", 3000, stored=True), at=0.99)

    with open_table(path) as table, pytest.raises(ImportFileError) as exc:
        list(table.rows())

    assert exc.value.message.startswith("the workbook is damaged: sheet 会员 cannot be read after")
    assert "Bad CRC-32" in exc.value.message


def test_a_small_part_that_fails_its_checksum_is_refused_when_opened(tmp_path):
    # Its header is looked for among the first rows: the end of the part is met then.
    path = flip_digit(workbook(tmp_path / "m.xlsx", 3, stored=True), at=0.5)

    with pytest.raises(ImportFileError, match=r"^the workbook is damaged: .*Bad CRC-32"):
        open_table(path)


def test_a_compressed_part_with_corrupt_bytes_is_refused(tmp_path):
    path = workbook(tmp_path / "m.xlsx", 3000)
    data, start, end, _ = sheet_bytes(path)
    middle = (start + end) // 2
    data[middle : middle + 16] = bytes(16)
    path.write_bytes(bytes(data))

    with pytest.raises(ImportFileError, match=r"^the workbook is damaged: sheet 会员"):
        read_all(path)


def test_a_workbook_cut_short_is_refused_as_incomplete(tmp_path):
    path = workbook(tmp_path / "m.xlsx", 300)
    path.write_bytes(path.read_bytes()[:-2000])

    with pytest.raises(ImportFileError, match="the workbook is incomplete"):
        open_table(path)


def test_a_workbook_whose_sheet_part_is_missing_is_refused(tmp_path):
    path = workbook(tmp_path / "m.xlsx", 3)
    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    del parts[SHEET]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)

    with pytest.raises(ImportFileError, match="no worksheet that can be read; it may be damaged"):
        open_table(path)


def test_a_bug_while_reading_is_not_taken_for_damage(tmp_path, monkeypatch):
    from openpyxl.worksheet import _reader

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    path = workbook(tmp_path / "m.xlsx", 3)
    with open_table(path) as table:
        monkeypatch.setattr(_reader.WorkSheetParser, "parse", out_of_memory)
        with pytest.raises(MemoryError):
            list(table.rows())


# --- the console and the command --------------------------------------------------------------


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


@pytest.fixture
def cut_in_header(tmp_path):
    return cut_sheet(workbook(tmp_path / "会员.xlsx", 3), lambda xml: xml.index("手机号".encode()))


@pytest.fixture
def cut_halfway(tmp_path):
    return cut_sheet(workbook(tmp_path / "会员.xlsx", 3000), lambda xml: len(xml) // 2)


def test_uploading_a_damaged_workbook_shows_the_reason_and_creates_nothing(
    org, tmall, login, cut_in_header, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("会员.xlsx", cut_in_header.read_bytes(), content_type=XLSX)
    data = {"kind": "customer", "channel": tmall.pk, "encoding": "", "sheet": "", "mapping": ""}

    with django_capture_on_commit_callbacks(execute=True):
        response = login(org.admin).post(reverse("imports:new"), {**data, "file": upload})

    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "the workbook is damaged: sheet 会员 cannot be read" in errors
    assert "alert-error" in response.content.decode()
    assert response.context["form"].mapping_fields == []
    assert not ImportJob.objects.exists()
    assert not Customer.objects.exists()


def siyu_import(*args, out: io.StringIO | None = None) -> str:
    """Run the command as `siyu import ARGS` would; return what it printed."""
    out = out if out is not None else io.StringIO()
    call_command("import_file", *map(str, args), stdout=out)
    return out.getvalue()


def test_the_command_refuses_a_damaged_workbook_with_the_reason(tmall, cut_in_header):
    with pytest.raises(CommandError, match="the workbook is damaged: sheet 会员 cannot be read"):
        siyu_import("customers", cut_in_header, "--channel", "tmall")

    assert not ImportJob.objects.exists()


def test_the_command_stops_where_a_workbook_is_damaged_and_says_why(tmall, cut_halfway):
    out = io.StringIO()

    with pytest.raises(CommandError, match="import failed"):
        siyu_import("customers", cut_halfway, "--channel", "tmall", out=out)

    job = ImportJob.objects.get()
    assert job.state == ImportJob.State.FAILED
    assert job.message.startswith("the workbook is damaged: sheet 会员 cannot be read after row")
    assert f"Reason: {job.message}" in out.getvalue()


def test_a_dry_run_of_a_damaged_workbook_says_why_and_loads_nothing(tmall, cut_halfway):
    with pytest.raises(CommandError, match="the workbook is damaged: sheet 会员 cannot be read"):
        siyu_import("customers", cut_halfway, "--channel", "tmall", "--dry-run")

    assert not Customer.objects.exists()
