import csv
import io
import os
import time
import zipfile
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.imports import readers
from siyu.imports.readers import ImportFileError, open_table
from siyu.imports.tests.files import write_csv, write_xlsx, write_xlsx_by_hand

MEMBERS = [
    ["姓名", "手机号", "性别", "生日", "城市"],
    ["张三", "13812341234", "男", "1990-01-02", "上海"],
    ["李四", "13912341234", "女", "1991/2/3", "杭州"],
]


def read_all(path, **options):
    with open_table(path, **options) as table:
        return table, list(table.rows())


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("gbk", False, "gb18030")],
)
def test_given_members_csv_in_common_encodings_when_opened_then_encoding_is_detected(
    tmp_path, encoding, bom, expected
):
    path = write_csv(tmp_path / "m.csv", MEMBERS, encoding=encoding, bom=bom)

    table, rows = read_all(path)

    assert table.kind == "csv"
    assert table.encoding == expected
    assert table.header == MEMBERS[0]
    assert rows == [(2, MEMBERS[1]), (3, MEMBERS[2])]


def test_given_short_gbk_file_when_opened_then_it_is_not_mistaken_for_korean(tmp_path):
    path = tmp_path / "short.csv"
    path.write_bytes("姓名,手机号\n张三,13812341234\n".encode("gbk"))

    table, rows = read_all(path)

    assert table.encoding == "gb18030"
    assert rows == [(2, ["张三", "13812341234"])]


def test_given_gb18030_file_with_rare_characters_when_opened_then_they_survive(tmp_path):
    rows_in = [["姓名", "手机号"], ["𠀀䶮𪚥", "13812341234"], ["龘靐", "13912341234"]]
    path = write_csv(tmp_path / "rare.csv", rows_in, encoding="gb18030")

    table, rows = read_all(path)

    assert table.encoding == "gb18030"
    assert [values[0] for _, values in rows] == ["𠀀䶮𪚥", "龘靐"]


def test_given_gbk_override_when_file_has_gb18030_characters_then_superset_decodes_them(tmp_path):
    path = write_csv(tmp_path / "rare.csv", [["姓名"], ["𠀀"]], encoding="gb18030")

    table, rows = read_all(path, encoding="GBK")

    assert table.encoding == "gb18030"
    assert rows == [(2, ["𠀀"])]


def test_given_utf16_tab_separated_export_when_opened_then_it_is_read(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("姓名\t手机号\r\n张三\t13812341234\r\n".encode("utf-16"))

    table, rows = read_all(path)

    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert rows == [(2, ["张三", "13812341234"])]


def test_given_unknown_encoding_name_when_opened_then_error_says_so(tmp_path):
    path = write_csv(tmp_path / "m.csv", MEMBERS)

    with pytest.raises(ImportFileError, match="unknown encoding 'klingon'"):
        open_table(path, encoding="klingon")


def test_given_gbk_file_when_utf8_is_forced_then_error_names_the_row(tmp_path):
    rows_in = [["name", "mobile"], ["zhang", "13812341234"], ["张三", "13912341234"]]
    path = write_csv(tmp_path / "gbk.csv", rows_in, encoding="gbk")

    expected = r"row 3 \(line 3 of the file\).*utf-8"
    with (
        open_table(path, encoding="utf-8") as table,
        pytest.raises(ImportFileError, match=expected) as exc,
    ):
        list(table.rows())

    assert exc.value.row == 3


def test_given_file_that_switches_from_utf8_to_gbk_when_read_then_error_names_the_row(tmp_path):
    head = "".join(f"张三{i},1381234{i:04d}\n" for i in range(20)).encode("utf-8")
    path = tmp_path / "mixed.csv"
    path.write_bytes("姓名,手机号\n".encode() + head + "李四,13912341234\n".encode("gbk"))

    with open_table(path) as table:
        assert table.encoding == "utf-8"
        with pytest.raises(ImportFileError, match=r"row 22 .*cannot be decoded as utf-8"):
            list(table.rows())


def test_given_gbk_part_beyond_the_sample_when_read_then_detection_used_only_the_sample(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 4096)
    lines = "".join(f"name{i},1381234{i:04d}\n" for i in range(500)).encode()
    path = tmp_path / "late.csv"
    path.write_bytes(b"name,mobile\n" + lines + "张三,13912341234\n".encode("gbk"))

    with open_table(path) as table:
        assert table.encoding == "utf-8"
        with pytest.raises(ImportFileError, match="row 502 "):
            list(table.rows())


def test_given_gbk_bytes_several_blocks_in_when_read_then_error_names_the_row(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 100)
    lines = "".join(f"张三{i},1381234{i:04d}\n" for i in range(300)).encode()
    path = tmp_path / "late.csv"
    path.write_bytes("姓名,手机号\n".encode() + lines + "李四,13912341234\n".encode("gbk"))

    with open_table(path) as table, pytest.raises(ImportFileError, match=r"row 302 \(line 302"):
        list(table.rows())


CELL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), max_size=25))
def test_given_any_csv_content_when_read_in_tiny_blocks_then_rows_match_the_csv_module(
    tmp_path, monkeypatch, rows
):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 7)  # every value straddles a block boundary
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([["a", "b", "c"], *rows])
    path = tmp_path / "any.csv"
    path.write_bytes(buffer.getvalue().encode())

    with open_table(path, delimiter=",") as table:
        got = list(table.rows())

    expected = [(n, r) for n, r in enumerate(rows, 2) if any(r)]
    assert got == expected


def test_given_missing_file_when_opened_then_error_says_it_cannot_be_opened(tmp_path):
    with pytest.raises(ImportFileError, match="cannot open the file"):
        open_table(tmp_path / "nope.csv")


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n\r\n  \n"])
def test_given_empty_file_when_opened_then_error_says_empty(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)

    with pytest.raises(ImportFileError, match="the file is empty"):
        open_table(path)


def test_given_header_only_file_when_read_then_no_rows_and_no_error(tmp_path):
    path = write_csv(tmp_path / "header.csv", [MEMBERS[0]])

    table, rows = read_all(path)

    assert table.header == MEMBERS[0]
    assert rows == []


def test_given_binary_file_renamed_csv_when_opened_then_error_says_binary(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))

    with pytest.raises(ImportFileError, match="binary data"):
        open_table(path)


def test_given_binary_without_nul_bytes_when_opened_then_error_says_not_text(tmp_path):
    noise = bytes(b for b in os.urandom(6000) if b not in (0, 10, 13))
    path = tmp_path / "noise.csv"
    path.write_bytes(b"\x01\x02\x03\x04\x05\x06" + noise)

    with pytest.raises(ImportFileError, match="not text in a known encoding"):
        open_table(path)


def test_given_file_that_switches_from_gbk_to_utf8_when_read_then_error_names_the_row(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 1024)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 4096)  # the switch lands inside a later block
    gbk = "".join(f"李娜{i},1390000{i:04d}\r\n" for i in range(400)).encode("gbk")
    utf8 = "张伟,13800000001\r\n".encode()
    path = tmp_path / "switch.csv"
    path.write_bytes(
        "姓名,手机号\r\n".encode("gbk") + gbk + utf8 + "王芳,13900000009\r\n".encode("gbk")
    )

    with open_table(path) as table:
        assert table.encoding == "gb18030"
        rows = table.rows()
        read = [next(rows) for _ in range(400)]
        with pytest.raises(ImportFileError, match="row 402 \\(line 402 of the file\\) is UTF-8"):
            next(rows)

    assert read[-1] == (401, ["李娜399", "13900000399"])  # every GBK row before it came through


def test_given_gbk_rows_then_utf8_rows_in_the_sample_when_opened_then_error_names_both(tmp_path):
    gbk = "".join(f"李娜{i},1390000{i:04d}\r\n" for i in range(3)).encode("gbk")
    utf8 = "".join(f"张伟{i},1380000{i:04d}\r\n" for i in range(3)).encode("utf-8")
    path = tmp_path / "pasted.csv"
    path.write_bytes("姓名,手机号\r\n".encode("gbk") + gbk + utf8)

    with pytest.raises(ImportFileError, match="mixes encodings: line 1 is GBK/GB18030 and line 5"):
        open_table(path)
    with open_table(path, encoding="gb18030") as table:  # choosing one reads up to the other
        assert table.header == ["姓名", "手机号"]


def test_given_nul_bytes_after_the_sample_when_read_then_error_names_the_row(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 1024)
    lines = "".join(f"n{i},1381234{i:04d}\n" for i in range(200))
    path = tmp_path / "nul.csv"
    path.write_bytes(f"name,mobile\n{lines}".encode() + b"x\x00y,1\n")

    with open_table(path) as table, pytest.raises(ImportFileError, match=r"row 202 .*NUL"):
        list(table.rows())


def test_given_old_xls_file_when_opened_then_error_asks_for_xlsx(tmp_path):
    path = tmp_path / "orders.xls"
    path.write_bytes(readers.OLE_MAGIC + b"\x00" * 504)

    with pytest.raises(ImportFileError, match=r"old Excel \.xls"):
        open_table(path)


def test_given_zip_that_is_not_a_workbook_when_opened_then_error_says_so(tmp_path):
    path = tmp_path / "orders.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orders.csv", "a,b\n1,2\n")

    with pytest.raises(ImportFileError, match="not an Excel workbook"):
        open_table(path)


def test_given_50mb_single_line_when_opened_then_it_fails_fast_without_reading_it(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        chunk = b"a" * (1024 * 1024)
        for _ in range(50):
            f.write(chunk)
    started = time.perf_counter()

    with pytest.raises(ImportFileError, match="row 1 is longer than 1 MB"):
        open_table(path)

    assert time.perf_counter() - started < 3


def test_given_50mb_line_after_the_header_when_read_then_error_names_its_row(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.write(b"name,mobile\nzhang,13812341234\n")
        f.write(b"x," * (25 * 1024 * 1024))

    with open_table(path) as table, pytest.raises(ImportFileError, match="row 3 is longer"):
        list(table.rows())


def test_given_quote_never_closed_when_read_then_error_points_at_the_row(tmp_path):
    lines = "".join(f"n{i},1381234{i:04d}\n" for i in range(60000))
    path = tmp_path / "quote.csv"
    path.write_text(f'name,mobile\nzhang,"13812341234\n{lines}', encoding="utf-8")

    with open_table(path) as table, pytest.raises(ImportFileError, match=r"row 2 .*quote"):
        list(table.rows())


def test_given_duplicated_column_names_when_opened_then_both_are_in_the_header(tmp_path):
    path = write_csv(tmp_path / "dup.csv", [["订单编号", "手机号", "订单编号"], ["1", "2", "3"]])

    with open_table(path) as table:  # build_mapping refuses the name if it is imported
        assert table.header == ["订单编号", "手机号", "订单编号"]


# --- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_given_common_delimiter_when_opened_then_it_is_sniffed(tmp_path, delimiter):
    rows_in = [["订单号", "备注", "金额"], ["1", "含,逗号;分号", "9.90"], ["2", "", "1.00"]]
    path = write_csv(tmp_path / "d.csv", rows_in, delimiter=delimiter)

    table, rows = read_all(path)

    assert table.delimiter == delimiter
    assert rows == [(2, rows_in[1]), (3, rows_in[2])]


def test_given_delimiter_override_when_opened_then_it_is_used(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["a;b", "c"], ["1;2", "3"]], delimiter=",")

    table, rows = read_all(path, delimiter=";")

    assert table.header == ["a", "b,c"]
    assert rows == [(2, ["1", "2,3"])]


def test_given_single_column_file_when_opened_then_it_reads_as_one_column(tmp_path):
    path = write_csv(tmp_path / "phones.csv", [["13812341234"], ["13912341234"]])

    table, rows = read_all(path)

    assert table.header == ["13812341234"]
    assert rows == [(2, ["13912341234"])]


def test_given_quoted_newlines_when_read_then_row_numbers_count_records_not_lines(tmp_path):
    rows_in = [["订单号", "买家留言"], ["1", "第一行\n第二行\r\n第三行"], ["2", "ok"]]
    path = write_csv(tmp_path / "q.csv", rows_in)

    _, rows = read_all(path)

    assert rows == [(2, ["1", "第一行\n第二行\r\n第三行"]), (3, ["2", "ok"])]


def test_given_blank_lines_and_short_rows_when_read_then_blank_skipped_and_short_padded(
    tmp_path,
):
    path = tmp_path / "gaps.csv"
    path.write_text("\n姓名,手机号,城市,\n张三,13812341234\n\n,,\n李四,13912341234,杭州,x\n")

    table, rows = read_all(path)

    assert (table.header, table.header_row) == (["姓名", "手机号", "城市"], 2)
    assert rows == [(3, ["张三", "13812341234", ""]), (6, ["李四", "13912341234", "杭州", "x"])]


def test_given_table_when_rows_read_twice_then_second_read_is_refused(tmp_path):
    path = write_csv(tmp_path / "m.csv", MEMBERS)

    with open_table(path) as table:
        list(table.rows())
        with pytest.raises(RuntimeError):
            list(table.rows())


def test_given_headerless_file_when_rows_include_header_then_first_row_is_data(tmp_path):
    path = write_csv(tmp_path / "phones.csv", [["13812341234"], ["13912341234"]])

    with open_table(path) as table:
        rows = list(table.rows(include_header=True))

    assert rows == [(1, ["13812341234"]), (2, ["13912341234"])]


def test_given_table_used_as_context_manager_when_left_then_file_is_closed(tmp_path):
    path = write_csv(tmp_path / "m.csv", MEMBERS)

    with open_table(path) as table:
        pass

    assert table._file.closed


# --- XLSX -----------------------------------------------------------------------------------


def test_given_xlsx_with_several_sheets_when_opened_then_first_nonempty_sheet_is_read(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": [], "会员": MEMBERS, "其他": [["x"]]})

    table, rows = read_all(path)

    assert table.kind == "xlsx"
    assert table.sheet_names == ["说明", "会员", "其他"]
    assert table.sheet == "会员"
    assert table.header == MEMBERS[0]
    assert rows[0] == (2, MEMBERS[1])


@pytest.mark.parametrize("choice", ["其他", 2])
def test_given_xlsx_when_sheet_chosen_by_name_or_index_then_that_sheet_is_read(tmp_path, choice):
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": [], "会员": MEMBERS, "其他": [["x"], ["y"]]})

    table, rows = read_all(path, sheet=choice)

    assert (table.sheet, table.header, rows) == ("其他", ["x"], [(2, ["y"])])


def test_given_xlsx_when_unknown_sheet_chosen_then_error_lists_the_sheets(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": [], "会员": MEMBERS})

    with pytest.raises(ImportFileError, match="no sheet named '订单'; sheets: 说明, 会员"):
        open_table(path, sheet="订单")
    with pytest.raises(ImportFileError, match="no sheet number 5; sheets: 说明, 会员"):
        open_table(path, sheet=4)


def test_given_xlsx_with_only_empty_sheets_when_opened_then_error_says_no_data(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"Sheet1": [], "Sheet2": []})

    with pytest.raises(ImportFileError, match="every sheet is empty; sheets: Sheet1, Sheet2"):
        open_table(path)


def test_given_notes_sheet_before_the_table_when_opened_then_the_table_sheet_is_read(tmp_path):
    notes = [["本表由系统导出，请勿修改表头"], [], ["导出时间 2024-05-01"]]
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": notes, "订单": MEMBERS, "其他": [["x"]]})

    table, rows = read_all(path)

    assert table.sheet_names == ["说明", "订单", "其他"]
    assert (table.sheet, table.header) == ("订单", MEMBERS[0])
    assert rows[0] == (2, MEMBERS[1])


@pytest.mark.parametrize(
    "later",
    [
        {},  # the only sheet: a list of phone numbers under a one-column header
        {"备注": [["a"], ["b"]]},  # later sheets have no table either
        {"空": [], "订单": [*[[]] * readers.PROBE_ROWS, *MEMBERS]},  # a header too far down
    ],
)
def test_given_one_column_first_sheet_and_no_table_after_it_when_opened_then_it_is_read(
    tmp_path, later
):
    phones = [["手机号"], ["13812341234"], ["13912341234"]]
    path = write_xlsx(tmp_path / "book.xlsx", {"手机": phones, **later})

    table, rows = read_all(path)

    assert (table.sheet, table.header, len(rows)) == ("手机", ["手机号"], 2)


def test_given_title_row_above_a_table_when_opened_then_that_sheet_is_not_skipped(tmp_path):
    titled = [["2024年5月会员"], MEMBERS[0], MEMBERS[1]]
    path = write_xlsx(tmp_path / "book.xlsx", {"会员": titled, "订单": MEMBERS})

    table, _ = read_all(path)

    assert (table.sheet, table.header) == ("会员", ["2024年5月会员"])


def test_given_notes_sheet_chosen_by_name_when_opened_then_it_is_read(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": [["请看第二页"]], "订单": MEMBERS})

    table, rows = read_all(path, sheet="说明")

    assert (table.sheet, table.header, rows) == ("说明", ["请看第二页"], [])


def test_given_xlsx_named_csv_when_opened_then_content_decides(tmp_path):
    path = write_xlsx(tmp_path / "really-a-workbook.csv", {"会员": MEMBERS})

    table, rows = read_all(path)

    assert table.kind == "xlsx"
    assert len(rows) == 2


ERP_ORDERS = [
    ["订单号", "买家", "商品", "数量", "备注"],
    ["1", "tb_a", "T恤", 2, "加急"],
    [None, None, "袜子", 1, None],
    [None, None, "帽子", 1, None],
    ["2", "tb_b", "裙子", 1, None],
]


def test_given_order_cells_merged_over_item_lines_when_read_then_every_line_has_them(tmp_path):
    merged = ["A2:A4", "B2:B4", "D5:E5"]  # an order over three lines; a note across two cells
    sheet = [*ERP_ORDERS[:-1], ["2", "tb_b", "裙子", "见备注", None]]
    path = write_xlsx(tmp_path / "m.xlsx", {"订单": sheet}, merged={"订单": merged})

    _, rows = read_all(path)

    assert rows == [
        (2, ["1", "tb_a", "T恤", 2, "加急"]),
        (3, ["1", "tb_a", "袜子", 1, None]),
        (4, ["1", "tb_a", "帽子", 1, None]),
        (5, ["2", "tb_b", "裙子", "见备注", "见备注"]),
    ]


def test_given_merges_out_of_order_and_read_in_small_blocks_when_read_then_all_are_filled(
    tmp_path, monkeypatch
):
    # Blocks of 7 bytes cut every tag; the ranges are listed bottom first.
    monkeypatch.setattr(readers, "BLOCK_BYTES", 7)
    sheet = [*ERP_ORDERS[:3], ["2", "tb_b", "裙子", 1, None], [None, None, "鞋", 1, None]]
    path = write_xlsx_by_hand(tmp_path / "m.xlsx", sheet, merged=["A4:A5", "A2:A3", "B4:B5"])

    _, rows = read_all(path)

    assert [values[:2] for _, values in rows] == [["1", "tb_a"], ["1", None], *[["2", "tb_b"]] * 2]


def test_given_merges_written_with_a_namespace_prefix_when_read_then_they_are_filled(tmp_path):
    path = write_xlsx_by_hand(
        tmp_path / "m.xlsx", ERP_ORDERS[:3], merged=["A2:A3", "B2:B3"], prefixed=True
    )

    _, rows = read_all(path)

    assert [values[:3] for _, values in rows] == [["1", "tb_a", "T恤"], ["1", "tb_a", "袜子"]]


def test_given_a_header_cell_merged_down_when_read_then_the_data_below_stays_empty(tmp_path):
    # Two header rows run together: the header's value is not data.
    sheet = [["订单号", "商品"], [None, "袜子"]]
    path = write_xlsx(tmp_path / "m.xlsx", {"订单": sheet}, merged={"订单": ["A1:A2"]})

    table, rows = read_all(path)

    assert table.header == ["订单号", "商品"]
    assert rows == [(2, [None, "袜子"])]


@pytest.mark.parametrize("title", ["A1:E1", "A1:E2"])
def test_given_a_title_bar_above_the_header_when_read_then_the_header_is_the_row_below(
    tmp_path, title
):
    sheet = [["2026年3月订单明细"], *([[]] if title == "A1:E2" else []), *ERP_ORDERS]
    path = write_xlsx(tmp_path / "m.xlsx", {"订单": sheet}, merged={"订单": [title]})

    table, rows = read_all(path)

    below = 2 if title == "A1:E1" else 3
    assert (table.header, table.header_row) == (ERP_ORDERS[0], below)
    assert rows[0] == (below + 1, ERP_ORDERS[1])


def test_given_column_groups_above_the_header_when_read_then_the_header_is_the_row_below(
    tmp_path,
):
    sheet = [["订单信息", None, "商品信息", None, None], *ERP_ORDERS]
    path = write_xlsx(tmp_path / "m.xlsx", {"订单": sheet}, merged={"订单": ["A1:B1", "C1:E1"]})

    table, rows = read_all(path)

    assert (table.header, table.header_row) == (ERP_ORDERS[0], 2)
    assert len(rows) == 4


def test_given_a_header_with_one_cell_merged_across_when_read_then_it_is_the_header(tmp_path):
    sheet = [["订单号", "备注", None], ["1", "加急", None]]
    path = write_xlsx(tmp_path / "m.xlsx", {"订单": sheet}, merged={"订单": ["B1:C1"]})

    table, _ = read_all(path)

    assert (table.header, table.header_row) == (["订单号", "备注"], 1)


def test_given_one_value_in_the_first_row_not_merged_when_read_then_it_is_the_header(tmp_path):
    sheet = [["手机号"], ["13812341234", "老客户"]]
    path = write_xlsx(tmp_path / "m.xlsx", {"名单": sheet})

    table, rows = read_all(path)

    assert (table.header, rows) == (["手机号"], [(2, ["13812341234", "老客户"])])


def test_given_xlsx_with_title_rows_and_gaps_when_read_then_numbers_match_the_sheet(tmp_path):
    sheet = [[], [], ["姓名", "生日"], ["张三", datetime(1990, 1, 2)], [], ["李四", None]]
    path = write_xlsx(tmp_path / "m.xlsx", {"会员": sheet})

    table, rows = read_all(path)

    assert table.header_row == 3
    assert rows == [(4, ["张三", datetime(1990, 1, 2)]), (6, ["李四", None])]


def test_given_formula_with_cached_value_when_read_then_the_cached_result_is_returned(tmp_path):
    sheet = [["订单号", "单价", "金额", "备注"], ["A1", 10, ("=B2*2", 20), ('=A2&"x"', "A1x")]]
    path = write_xlsx_by_hand(tmp_path / "f.xlsx", sheet)

    table, rows = read_all(path)

    assert table.header == ["订单号", "单价", "金额", "备注"]
    assert rows == [(2, ["A1", 10, 20, "A1x"])]


def test_given_inline_rich_text_when_read_then_the_cell_is_its_plain_text(tmp_path):
    # Runs in bold and a phonetic guide: the value is the runs' text, the guide left out.
    sheet = [["姓名", "备注"], ["张三", ["老", "客户"]], ["李四", "普通"]]
    path = write_xlsx_by_hand(tmp_path / "r.xlsx", sheet)

    _, rows = read_all(path)

    assert rows == [(2, ["张三", "老客户"]), (3, ["李四", "普通"])]


def test_given_formula_never_calculated_when_read_then_cell_is_empty(tmp_path):
    # openpyxl (like some exporters) writes formulas without the value Excel would cache.
    path = write_xlsx(tmp_path / "f.xlsx", {"订单": [["单价", "金额"], [10, "=A2*2"]]})

    _, rows = read_all(path)

    assert rows == [(2, [10, None])]


def test_given_xlsx_with_wrong_dimension_when_read_then_all_rows_are_returned(tmp_path):
    rows_in = [["手机号"], *[[f"1381234{i:04d}"] for i in range(5)]]
    path = write_xlsx_by_hand(tmp_path / "dim.xlsx", rows_in)  # declares <dimension ref="A1"/>

    _, rows = read_all(path)

    assert len(rows) == 5
