import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from siyu.core.errors import DomainError
from siyu.customers.identifiers import normalize_phone
from siyu.imports.presets import build_mapping
from siyu.imports.readers import open_table
from siyu.imports.rows import (
    CHINA,
    _plain_prefixes,
    normalize_status,
    parse_amount,
    parse_customer,
    parse_date,
    parse_datetime,
    parse_order,
)
from siyu.imports.tests.files import write_csv
from siyu.imports.tests.test_presets import DOUYIN, TAOBAO

MEMBER_HEADER = ["姓名", "手机号", "性别", "生日", "城市", "省份", "邮箱", "标签", "会员号"]
MEMBERS = build_mapping(MEMBER_HEADER, kind="customer")
ORDER_HEADER = ["订单编号", "买家会员名", "买家实际支付金额", "订单状态", "联系手机", "退款金额"]
ORDERS = build_mapping(ORDER_HEADER, kind="order", preset="taobao_orders")


def member(**values):
    row = [values.get(k, "") for k in ("name", "phone", "gender", "birthday", "city")]
    row += [values.get(k, "") for k in ("province", "email", "tags", "member_no")]
    return parse_customer(7, row, MEMBERS)


def order(**values):
    keys = ("order_id", "buyer", "amount", "status", "phone", "refund")
    defaults = {"order_id": "3580000000000000001", "status": "交易成功", "amount": "99.00"}
    return parse_order(9, [values.get(k, defaults.get(k, "")) for k in keys], ORDERS)


# --- phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["13812341234", " 13812341234 ", "+86 138 1234 1234", "0086-138-1234-1234", '="13812341234"'],
)
def test_given_mainland_mobile_in_any_export_form_when_parsed_then_phone_is_e164(raw):
    row = member(phone=raw)

    assert row.errors == []
    assert row.phone == "+8613812341234"
    assert row.identifiers == [("phone", "+8613812341234")]
    assert row.phone_display is None


@pytest.mark.parametrize("raw", [13812341234, 13812341234.0])
def test_given_phone_stored_as_a_number_in_xlsx_when_parsed_then_it_is_a_phone(raw):
    row = parse_customer(2, [raw], build_mapping(["手机号"], kind="customer"))

    assert row.phone == "+8613812341234"


def test_phones_parsed_agree_with_the_oneid_normaliser_on_a_large_random_sample():
    # The parser's shortcuts (plain mainland mobiles, masked numbers) must give exactly what
    # normalize_phone gives: the same E.164 value, or no identity at all.
    rng = random.Random(11)
    sample = [f"1{rng.randrange(10**10):010d}" for _ in range(20_000)]
    sample += [f"{p}{rng.randrange(10**7):07d}" for p in range(1000, 2000) for _ in range(3)]
    sample += [f"1{rng.randrange(10**9):09d}", f"1{rng.randrange(10**11):011d}"]
    sample += ["13800000000", "19999999999", "10000000000", "138****1234", "1380000000x"]
    sample += ["１３８１２３４１２３４", "+8613812341234", "8613812341234", "138 1234 1234"]
    sample += ["138xxxx1234", "138XXX1234", "13812341234-12", "(0571) 8888 8888"]
    for raw in sample:
        row = member(phone=raw)
        try:
            expected, reason = normalize_phone(raw), None
        except DomainError as exc:
            expected, reason = None, exc.message
        assert row.phone == expected, raw
        assert row.identifiers == ([("phone", expected)] if expected else []), raw
        if reason and not row.phone_display:  # an error, worded as the normaliser words it
            assert [e.reason for e in row.errors] == [reason], raw


def test_prefixes_decided_without_phonenumbers_hold_for_every_fifth_digit():
    # The shortcut samples five numbers per 4-digit prefix; a prefix whose numbers differ by
    # the next digit must not be among those called all invalid.
    valid, invalid = _plain_prefixes("CN")
    assert "1380" in valid and "1000" in invalid and "1210" not in invalid and not valid & invalid
    for prefix in sorted(invalid):
        for digit in "0123456789":
            with pytest.raises(DomainError, match="is not a valid phone number"):
                normalize_phone(f"{prefix}{digit}123456")


def test_given_typo_in_a_mobile_when_parsed_then_the_error_names_the_number():
    row = member(phone="10012341234")

    assert row.phone is None and row.identifiers == []
    assert [(e.reason, e.value) for e in row.errors] == [
        ("'10012341234' is not a valid phone number", "10012341234")
    ]


def test_given_prefix_outside_the_fast_path_when_parsed_then_phonenumbers_decides():
    assert member(phone="14000000000").errors[0].reason.endswith("is not a valid phone number")
    assert member(phone="19912341234").phone == "+8619912341234"


@pytest.mark.parametrize(
    "raw", ["138****1234", "138＊＊＊＊1234", "*******1234", "13812341234-1234", "13812341234转567"]
)
def test_given_masked_or_virtual_number_when_parsed_then_it_is_display_only_not_an_error(raw):
    row = member(name="张三", phone=raw)

    assert row.errors == []
    assert row.phone is None
    assert row.phone_display == raw
    assert row.identifiers == []
    assert row.masked == [("phone", raw)]


def test_given_masked_phone_and_a_buyer_id_when_order_parsed_then_buyer_id_is_the_identity():
    row = order(buyer="tb_zhang", phone="138****1234")

    assert row.errors == []
    assert row.identifiers == [("tmall_buyer", "tb_zhang")]
    assert row.phone_display == "138****1234"


@pytest.mark.parametrize("raw", ["12345", "hello", "1381234"])
def test_given_invalid_phone_when_parsed_then_error_has_row_column_reason_and_value(raw):
    row = member(name="张三", phone=raw)

    assert len(row.errors) == 1
    error = row.errors[0]
    assert (error.row, error.column, error.value) == (7, "手机号", raw)
    assert "phone number" in error.reason
    assert row.phone is None


# --- customers ------------------------------------------------------------------------------


def test_given_full_member_row_when_parsed_then_every_field_is_typed():
    row = member(
        name=" 张三 ",
        phone="13812341234",
        gender="女",
        birthday="1990年1月2日",
        city="上海",
        province="上海市",
        email="Zhang@Example.COM",
        tags="VIP, 价值:高净值，母婴;宝妈、 老客 |VIP",
        member_no="M0001",
    )

    assert row.errors == []
    assert (row.name, row.gender, row.birthday) == ("张三", "f", date(1990, 1, 2))
    assert (row.province, row.city, row.email) == ("上海市", "上海", "zhang@example.com")
    assert row.tags == [
        (None, "VIP"), ("价值", "高净值"), (None, "母婴"), (None, "宝妈"), (None, "老客")
    ]  # fmt: skip
    assert row.member_no == "M0001"
    assert row.identifiers == [
        ("phone", "+8613812341234"),
        ("email", "zhang@example.com"),
        ("store_member_no", "M0001"),
    ]


@pytest.mark.parametrize(
    ("raw", "gender"), [("男", "m"), ("M", "m"), ("female", "f"), ("2", "f"), ("保密", "")]
)
def test_given_gender_words_when_parsed_then_they_normalise(raw, gender):
    assert member(phone="13812341234", gender=raw).gender == gender


def test_given_bad_gender_email_and_birthday_when_parsed_then_each_is_an_error():
    future = (date.today() + timedelta(days=2)).isoformat()
    row = member(phone="13812341234", gender="X", email="not-an-email", birthday=future)

    assert [e.column for e in row.errors] == ["性别", "生日", "邮箱"]
    assert "out of range" in row.errors[1].reason


def test_given_row_without_any_identifier_when_parsed_then_it_is_an_error():
    row = member(name="张三", city="上海")

    assert len(row.errors) == 1
    assert row.errors[0].reason.startswith("no phone, e-mail")


def test_given_empty_markers_when_parsed_then_they_are_empty_not_errors():
    row = member(phone="13812341234", email="-", birthday="--", city="null", tags="N/A")

    assert row.errors == []
    assert (row.email, row.birthday, row.city, row.tags) == (None, None, None, None)


def test_given_masked_buyer_id_when_parsed_then_it_is_display_only():
    mapping = build_mapping(["姓名", "淘宝会员名", "手机号"], kind="customer")

    row = parse_customer(2, ["张三", "t**9", "138****1234"], mapping)

    assert row.errors == []
    assert row.identifiers == []
    assert row.masked == [("tmall_buyer", "t**9"), ("phone", "138****1234")]


def test_given_buyer_id_with_spaces_when_parsed_then_error_matches_the_oneid_rule():
    mapping = build_mapping(
        ["淘宝会员名"], kind="customer", user_mapping={"tmall_buyer": "淘宝会员名"}
    )

    row = parse_customer(2, ["tb zhang"], mapping)

    assert row.errors[0].reason == "must not contain spaces or control characters"


def test_given_overlong_name_when_parsed_then_it_is_an_error():
    assert member(phone="13812341234", name="张" * 101).errors[0].reason.startswith("longer than")


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-02", datetime(2024, 1, 2)),
        ("2024-01-02 10:30:05", datetime(2024, 1, 2, 10, 30, 5)),
        ("2024/1/2", datetime(2024, 1, 2)),
        ("2024/1/2 9:05", datetime(2024, 1, 2, 9, 5)),
        ("2024.01.02", datetime(2024, 1, 2)),
        ("2024.01.02 23:59:59", datetime(2024, 1, 2, 23, 59, 59)),
        ("2024年1月2日", datetime(2024, 1, 2)),
        ("2024年01月02日 10时30分", datetime(2024, 1, 2, 10, 30)),
        ("2024年1月2日 10:30:05", datetime(2024, 1, 2, 10, 30, 5)),
        ("2024-01-02T10:30", datetime(2024, 1, 2, 10, 30)),
        ("2024-01-02 10:30:05.5", datetime(2024, 1, 2, 10, 30, 5, 500000)),
        ("20240102", datetime(2024, 1, 2)),
        ("20240102103005", datetime(2024, 1, 2, 10, 30, 5)),
        ("45293", datetime(2024, 1, 2)),
        ("45293.4375", datetime(2024, 1, 2, 10, 30)),
        (45293.4375, datetime(2024, 1, 2, 10, 30)),
        (datetime(2024, 1, 2, 10, 30), datetime(2024, 1, 2, 10, 30)),
        (date(2024, 1, 2), datetime(2024, 1, 2)),
    ],
)
def test_given_date_in_an_export_format_when_parsed_then_it_is_aware_china_time(raw, expected):
    value = parse_datetime(raw)

    assert value == expected.replace(tzinfo=CHINA)
    assert value.utcoffset() == timedelta(hours=8)


def test_given_date_with_an_offset_when_parsed_then_the_offset_is_kept():
    value = parse_datetime("2024-01-02T02:30:00+00:00")

    assert value.tzinfo == UTC
    assert value.astimezone(CHINA).hour == 10


@pytest.mark.parametrize("raw", ["2024-13-01", "2024/2/30", "yesterday", "01/02/2024", "1e9", ""])
def test_given_unparseable_date_when_parsed_then_value_error_says_why(raw):
    with pytest.raises(ValueError, match=r"not a (valid )?date"):
        parse_datetime(raw)


@pytest.mark.parametrize(
    "raw", ["1990-01-02", "1990/1/2", "19900102", "1990年1月2日", datetime(1990, 1, 2), 32875]
)
def test_given_birthday_in_any_format_when_parsed_then_it_is_a_date(raw):
    assert parse_date(raw) == date(1990, 1, 2)


def test_given_order_with_unparseable_time_when_parsed_then_row_is_invalid():
    mapping = build_mapping(["订单编号", "订单创建时间"], kind="order", preset="taobao_orders")

    row = parse_order(5, ["1001", "2024-02-30 10:00:00"], mapping)

    assert [(e.row, e.column, e.value) for e in row.errors] == [
        (5, "订单创建时间", "2024-02-30 10:00:00")
    ]


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("99", "99.00"),
        ("99.5", "99.50"),
        ("¥1,234.50", "1234.50"),
        ("￥ 1,234,567.8", "1234567.80"),
        ("RMB 12.34", "12.34"),
        ("12.34元", "12.34"),
        ("0.005", "0.01"),
        (12, "12.00"),
        (19.9, "19.90"),
        (Decimal("3.456"), "3.46"),
    ],
)
def test_given_amount_with_symbols_and_separators_when_parsed_then_decimal_two_places(
    raw, expected
):
    assert parse_amount(raw) == Decimal(expected)
    assert parse_amount(raw).as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("-5.00", "negative"),
        ("¥-5", "negative"),
        ("abc", "not a number"),
        ("1.234,50", "not a number"),
        ("12,34", "not a number"),
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        ("1e30", "too large"),
    ],
)
def test_given_bad_amount_when_parsed_then_value_error_says_why(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_amount(raw)


def test_given_order_with_negative_amount_when_parsed_then_row_error_names_the_column():
    row = order(amount="-1")

    assert [(e.column, e.reason, e.value) for e in row.errors] == [
        ("买家实际支付金额", "amount is negative", "-1")
    ]


def test_given_order_without_refund_amount_when_parsed_then_refund_is_none():
    row = order(refund="")

    assert (row.errors, row.refund_amount, row.amount) == ([], None, Decimal("99.00"))


# --- orders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("等待买家付款", "pending"),
        ("买家已付款，等待卖家发货", "paid"),
        ("卖家已发货，等待买家确认", "shipped"),
        ("交易成功", "completed"),
        ("交易关闭", "cancelled"),
        ("付款以后用户退款成功，交易自动关闭", "refunded"),
        ("付款以前，卖家或买家主动关闭交易", "cancelled"),
        ("等待付款", "pending"),
        ("等待出库", "paid"),
        ("等待确认收货", "shipped"),
        ("完成", "completed"),
        ("已取消", "cancelled"),
        ("(删除)已取消", "cancelled"),
        ("待支付", "pending"),
        ("备货中", "paid"),
        ("已发货", "shipped"),
        ("部分发货", "shipped"),
        ("已完成", "completed"),
        ("已关闭", "cancelled"),
        ("待发货", "paid"),
        ("退款成功", "refunded"),
        ("部分退款", "partially_refunded"),
        ("WAIT_SELLER_SEND_GOODS", "paid"),
        ("TRADE_FINISHED", "completed"),
        ("Cancelled", "cancelled"),
        ("商家已取消订单", "cancelled"),  # not in the table: keywords decide
    ],
)
def test_given_platform_status_text_when_normalised_then_it_is_one_of_ours(text, status):
    assert normalize_status(text) == status


def test_given_unknown_status_when_parsed_then_row_error_lists_the_known_ones():
    row = order(status="神秘状态")

    assert row.errors[0].reason.startswith("unknown order status; known: pending, paid")
    assert row.status_raw == "神秘状态"


@pytest.mark.parametrize(
    ("status", "refund", "expected"),
    [
        ("交易成功", "0.00", "completed"),
        ("交易成功", "10.00", "partially_refunded"),
        ("交易关闭", "99.00", "refunded"),
        ("交易关闭", "", "cancelled"),
        ("付款以后用户退款成功，交易自动关闭", "", "refunded"),
        ("付款以后用户退款成功，交易自动关闭", "30", "partially_refunded"),
        ("等待买家付款", "", "pending"),
    ],
)
def test_given_refund_amount_when_order_parsed_then_status_reflects_the_refund(
    status, refund, expected
):
    assert order(status=status, refund=refund).status == expected


@pytest.mark.parametrize(
    ("after_sale", "expected"),
    [
        ("退款成功", "refunded"),
        ("售后完成", "refunded"),
        ("部分退款成功", "partially_refunded"),
        ("退款关闭", "completed"),
        ("无售后", "completed"),
        ("-", "completed"),
    ],
)
def test_given_douyin_after_sale_status_when_parsed_then_it_adjusts_the_order_status(
    after_sale, expected
):
    mapping = build_mapping(DOUYIN, kind="order")
    values = [""] * len(DOUYIN)
    for name, value in [
        ("主订单编号", "6920000000000000001"),
        ("子订单编号", "6920000000000000002"),
        ("选购商品", "保湿面霜 50ml"),
        ("商品数量", "2"),
        ("商品单价", "¥59.90"),
        ("订单应付金额", "119.80"),
        ("收件人", "王*"),
        ("收件人手机号", "138****1234"),
        ("订单提交时间", "2024/03/08 20:15:01"),
        ("支付完成时间", "2024/03/08 20:15:30"),
        ("订单状态", "已完成"),
        ("售后状态", after_sale),
    ]:
        values[DOUYIN.index(name)] = value

    row = parse_order(2, values, mapping)

    assert row.errors == []
    assert row.status == expected
    assert (row.external_order_id, row.line_id) == ("6920000000000000001", "6920000000000000002")
    assert (row.quantity, row.unit_price, row.amount) == (2, Decimal("59.90"), Decimal("119.80"))
    assert row.paid_at == datetime(2024, 3, 8, 20, 15, 30, tzinfo=CHINA)
    assert (row.channel, row.identifiers, row.phone_display) == ("douyin", [], "138****1234")


def test_given_order_row_without_order_number_when_parsed_then_required_value_error():
    row = order(order_id="")

    assert [(e.column, e.reason) for e in row.errors] == [
        ("订单编号", "the order number is missing")
    ]


@pytest.mark.parametrize("raw", ["3.58E+18", "3.58e18", 3.58e18])
def test_given_order_number_mangled_by_excel_when_parsed_then_error_explains(raw):
    row = order(order_id=raw)

    assert "order number" in row.errors[0].reason


@pytest.mark.parametrize("raw", ['="3580000000000000001"', "'3580000000000000001", 3580000000000])
def test_given_order_number_protected_from_excel_when_parsed_then_it_is_unwrapped(raw):
    assert order(order_id=raw).external_order_id == str(raw).strip("=\"'")


@pytest.mark.parametrize(("raw", "quantity"), [("3", 3), (3, 3), (3.0, 3), ("3.0", 3)])
def test_given_quantity_when_parsed_then_it_is_an_int(raw, quantity):
    mapping = build_mapping(["订单号", "数量"], kind="order", user_mapping={
        "external_order_id": "订单号", "quantity": "数量"
    })  # fmt: skip

    assert parse_order(2, ["1", raw], mapping).quantity == quantity


@pytest.mark.parametrize("raw", ["2.5", "-1", "两件"])
def test_given_bad_quantity_when_parsed_then_it_is_an_error(raw):
    mapping = build_mapping(["订单号", "数量"], kind="order", user_mapping={
        "external_order_id": "订单号", "quantity": "数量"
    })  # fmt: skip

    assert parse_order(2, ["1", raw], mapping).errors[0].column == "数量"


def test_given_row_with_several_problems_when_parsed_then_all_are_reported():
    row = order(amount="abc", status="???", phone="123")

    assert [e.column for e in row.errors] == ["买家实际支付金额", "订单状态", "联系手机"]
    assert all(e.row == 9 for e in row.errors)


# --- end to end -----------------------------------------------------------------------------


def test_given_gbk_taobao_export_when_read_and_parsed_then_orders_come_out_typed(tmp_path):
    def line(**cells):
        return [cells.get(name, "") for name in TAOBAO]

    rows = [
        TAOBAO,
        line(
            订单编号='="3580000000000000001"',
            买家会员名="tb_zhang",
            买家实际支付金额="￥1,299.00",
            订单状态="交易成功",
            联系手机="138****1234",
            订单创建时间="2024-01-02 10:00:00",
            订单付款时间="2024-01-02 10:01:30",
            宝贝标题="羊绒大衣\n（冬季款）",
            宝贝总数量="1",
            退款金额="0.00",
        ),
        line(订单编号="3580000000000000002", 买家实际支付金额="-3", 订单状态="交易关闭"),
    ]
    path = write_csv(tmp_path / "ExportOrderList202401.csv", rows, encoding="gbk")

    with open_table(path) as table:
        mapping = build_mapping(table.header, kind="order")
        parsed = [parse_order(n, values, mapping) for n, values in table.rows()]

    good, bad = parsed
    assert mapping.preset == "taobao_orders"
    assert good.errors == []
    assert (good.external_order_id, good.amount, good.status) == (
        "3580000000000000001",
        Decimal("1299.00"),
        "completed",
    )
    assert good.created_at == datetime(2024, 1, 2, 10, tzinfo=CHINA)
    assert good.product_title == "羊绒大衣\n（冬季款）"
    assert good.identifiers == [("tmall_buyer", "tb_zhang")]
    assert [(e.row, e.column) for e in bad.errors] == [(3, "买家实际支付金额")]
