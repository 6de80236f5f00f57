import csv
from datetime import datetime

import pytest
from openpyxl import load_workbook

from siyu.imports.presets import build_mapping
from siyu.imports.readers import open_table
from siyu.imports.reports import escape_cell, write_error_report
from siyu.imports.rows import parse_customer
from siyu.imports.tests.files import write_csv

HEADER = ["姓名", "手机号", "备注"]
MAPPING = build_mapping(HEADER, kind="customer")


def failed_rows():
    rows = [
        (2, ["张三", "12345", '=HYPERLINK("http://evil","点我")']),
        (3, ["李四", "13812341234", "ok"]),
        (4, ["@SUM(A1)", "abc", "+1"]),
        (5, ["-2+3", "hello", "\tTAB"]),
    ]
    for number, values in rows:
        parsed = parse_customer(number, values, MAPPING)
        if parsed.errors:
            yield parsed


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("+86138", "'+86138"),
        ("-5", "'-5"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("张三", "张三"),
        ("a=b", "a=b"),
        (None, ""),
        (13812341234.0, "13812341234"),
        (datetime(2024, 1, 2, 10, 0), "2024-01-02 10:00:00"),
    ],
)
def test_given_cell_value_when_escaped_then_no_spreadsheet_runs_it(value, escaped):
    assert escape_cell(value) == escaped


def test_given_failed_rows_when_csv_report_written_then_excel_friendly_and_escaped(tmp_path):
    path = tmp_path / "errors.csv"

    count = write_error_report(path, HEADER, failed_rows(), fmt="csv")

    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert count == 3
    assert lines[0] == ["行号", "出错列", "错误原因", "姓名", "手机号", "备注"]
    assert lines[1][:2] == ["2", "手机号"]
    assert "手机号: '12345' is not a valid phone number" in lines[1][2]
    assert lines[1][3:] == ["张三", "12345", '\'=HYPERLINK("http://evil","点我")']
    assert lines[2][3:] == ["'@SUM(A1)", "abc", "'+1"]
    assert lines[3][3] == "'-2+3"
    assert [line[0] for line in lines[1:]] == ["2", "4", "5"]


def test_given_failed_rows_when_xlsx_report_written_then_no_cell_is_a_formula(tmp_path):
    path = tmp_path / "errors.xlsx"

    count = write_error_report(path, HEADER, failed_rows(), fmt="xlsx")

    sheet = load_workbook(path).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert count == 3
    assert all(cell.data_type != "f" for cell in cells)
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["行号", "出错列", "错误原因", "姓名", "手机号", "备注"]
    assert values[1][5].startswith("'=HYPERLINK")
    assert values[2][3] == "'@SUM(A1)"


def test_given_report_when_uploaded_again_then_it_reads_as_the_original_columns(tmp_path):
    path = tmp_path / "errors.csv"
    write_error_report(path, HEADER, failed_rows())

    with open_table(path) as table:
        mapping = build_mapping(table.header, kind="customer")
        rows = list(table.rows())

    assert table.encoding == "utf-8-sig"
    assert mapping.names["phone"] == "手机号"
    assert [values[4] for _, values in rows] == ["12345", "abc", "hello"]


def test_given_xlsx_values_and_control_characters_when_reported_then_they_are_written_as_text(
    tmp_path,
):
    class Failed:
        row = 7
        values = [13812341234.0, datetime(2024, 1, 2, 9, 30), "bell\x07char"]
        errors = []

    path = tmp_path / "errors.xlsx"

    write_error_report(path, ["手机号", "时间", "备注"], [Failed()], fmt="xlsx")

    row = [c.value for c in next(load_workbook(path).active.iter_rows(min_row=2))]
    assert row == ["7", None, None, "13812341234", "2024-01-02 09:30:00", "bellchar"]


def test_given_short_row_when_reported_then_it_is_padded_to_the_header(tmp_path):
    class Failed:
        row = 3
        values = ["only"]
        errors = []

    path = tmp_path / "errors.csv"
    write_error_report(path, HEADER, [Failed()])

    lines = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert lines[1] == ["3", "", "", "only", "", ""]


def test_given_no_failed_rows_when_reported_then_the_report_has_only_a_header(tmp_path):
    path = tmp_path / "errors.csv"

    assert write_error_report(path, HEADER, iter(())) == 0
    assert path.read_text(encoding="utf-8-sig").splitlines() == [
        "行号,出错列,错误原因,姓名,手机号,备注"
    ]


def test_given_unknown_format_when_reporting_then_value_error(tmp_path):
    with pytest.raises(ValueError, match="fmt must be"):
        write_error_report(tmp_path / "x.pdf", HEADER, [], fmt="pdf")


def test_given_report_of_a_whole_file_when_written_then_rows_stream_through(tmp_path):
    rows = [HEADER] + [[f"n{i}", "bad", "x"] for i in range(2000)]
    source = write_csv(tmp_path / "members.csv", rows)
    path = tmp_path / "errors.csv"

    with open_table(source) as table:
        mapping = build_mapping(table.header, kind="customer")
        parsed = (parse_customer(n, v, mapping) for n, v in table.rows())
        count = write_error_report(path, table.header, (p for p in parsed if p.errors))

    assert count == 2000
