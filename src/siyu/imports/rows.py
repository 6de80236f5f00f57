"""Turn one row of values into typed, validated fields, collecting every error in the row.

    mapping = presets.build_mapping(table.header, kind="customer")
    for number, values in table.rows(include_header=mapping.first_row_is_data):
        parsed = parse_customer(number, values, mapping)
        if parsed.errors: ...            # the whole row goes to the error report
        else: parsed.identifiers         # [("phone", "+8613812341234"), ("email", …)]

Rules:
- A row with any error is invalid as a whole. An empty optional value is None, not an error.
- Phones become E.164 through siyu.customers.identifiers.normalize_phone (a plain mainland
  mobile takes a fast path to the same result). Masked (138****1234) and virtual numbers
  (13812341234-1234) are normal in platform exports: they are not errors and not identity;
  they are kept in `phone_display`. Masked buyer ids (t**9) likewise go to `masked`.
- Identifier values obey the same rules as the OneID normaliser, so the loader can trust them.
- Times in exports are China local time: naive values are read as Asia/Shanghai and returned
  as aware datetimes; values that carry an offset keep it.
- Amounts are Decimal with 2 places (half up); currency marks and thousands separators are
  accepted; negative or non-numeric amounts are errors.
- Order rows are one per line of the file; grouping lines into orders is the loader's job.
  `status` is normalised (ORDER_STATUSES); refund evidence (售后状态, 退款金额) turns it into
  refunded or partially_refunded.
"""

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from phonenumbers.phonemetadata import PhoneMetadata

from siyu.core.errors import DomainError
from siyu.customers.identifiers import (
    CONTROL,
    EXTENSION,
    MASKED_PHONE,
    MAX_VALUE_LENGTH,
    normalize_email,
    normalize_phone,
)
from siyu.customers.identifiers import _plain_mobile_prefixes as plain_mobile_prefixes
from siyu.imports.presets import CUSTOMER, IDENTITY_FIELDS, ORDER, Mapping

CHINA = ZoneInfo("Asia/Shanghai")
ORDER_STATUSES = (
    "pending",
    "paid",
    "shipped",
    "completed",
    "cancelled",
    "refunded",
    "partially_refunded",
)
# Cells that exporters write for "nothing".
EMPTY = frozenset({"", "-", "--", "—", "null", "NULL", "None", "none", "N/A", "n/a", "#N/A", r"\N"})
_EMPTY_FIRST = frozenset(v[0] for v in EMPTY if v)
CENT = Decimal("0.01")
_THIS_YEAR = date.today().year  # at import; a later year only makes the check slower
MAX_AMOUNT = Decimal("1000000000000")  # 10^12 CNY: anything larger is a broken cell
EXCEL_EPOCH = datetime(1899, 12, 30)
MAX_EXCEL_SERIAL = 2958465  # 9999-12-31
ORDER_YEARS = (1990, 2100)
# Tags in a cell: "group:tag" or a bare tag, separated by , ， ; ； | ｜ 、 or line breaks.
TAG_SEPARATORS = re.compile(r"\s*[,，;；|｜、\n]\s*")
TAG_GROUP_MARK = re.compile(r"\s*[:：]\s*")
TAG_NAME_LENGTH = 50  # siyu.tags.models: Tag.name and TagGroup.name
# A bare tag goes to the imported group; None stands for it until the loader names it.
TagName = tuple[str | None, str]
TEXT_LIMITS = {
    "name": 100,
    "receiver_name": 100,
    "province": 50,
    "city": 50,
    "level": TAG_NAME_LENGTH,
    "product_title": 255,
    "product_id": 100,
    "sku": 100,
    "external_order_id": 100,
    "line_id": 100,
}
GENDERS = {
    "男": "m",
    "男性": "m",
    "先生": "m",
    "m": "m",
    "male": "m",
    "1": "m",  # WeChat and Youzan: 1 male, 2 female, 0 unknown
    "女": "f",
    "女性": "f",
    "女士": "f",
    "f": "f",
    "female": "f",
    "2": "f",
    "未知": "",
    "保密": "",
    "其他": "",
    "unknown": "",
    "0": "",
}
_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(\d{1,2})\s*[:：时点]\s*(\d{1,2})\s*分?"
    r"(?:\s*[:：]?\s*(\d{1,2})(?:\.(\d{1,6}))?\s*秒?)?)?"
)
_SERIAL = re.compile(r"\d{1,7}(?:\.\d+)?")
_AMOUNT_MARKS = re.compile(r"[\s¥￥$元]|rmb|cny", re.IGNORECASE)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")


@dataclass(slots=True)
class RowError:
    row: int
    column: str  # the header as it appears in the file
    reason: str
    value: str


@dataclass(slots=True)
class ParsedRow:
    row: int
    values: Sequence[Any]  # the row as read, for the error report
    errors: list[RowError] = field(default_factory=list)
    # (kind, value) pairs ready for OneID (kinds of siyu.customers.models.Identity.Kind).
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    # Identifiers as the platform showed them, masked: display data, never identity.
    masked: list[tuple[str, str]] = field(default_factory=list)
    phone: str | None = None  # E.164, only for a real number
    phone_display: str | None = None  # a masked or virtual number as exported

    def add_error(self, column: str, reason: str, value: Any) -> None:
        self.errors.append(RowError(self.row, column, reason, _display(value)))


@dataclass(slots=True)
class CustomerRow(ParsedRow):
    name: str | None = None
    email: str | None = None
    gender: str | None = None  # "m" | "f" | "" (unknown), None when not given
    birthday: date | None = None
    province: str | None = None
    city: str | None = None
    tags: list[TagName] | None = None
    level: str | None = None  # a membership level, kept as a tag of the level group
    member_no: str | None = None


@dataclass(slots=True)
class OrderRow(ParsedRow):
    channel: str = ""
    external_order_id: str | None = None
    line_id: str | None = None
    receiver_name: str | None = None
    amount: Decimal | None = None
    status: str | None = None  # one of ORDER_STATUSES
    status_raw: str | None = None
    refund_status_raw: str | None = None
    created_at: datetime | None = None
    paid_at: datetime | None = None
    refund_amount: Decimal | None = None
    product_id: str | None = None
    product_title: str | None = None
    sku: str | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None


def parse_customer(row_number: int, values: Sequence[Any], mapping: Mapping) -> CustomerRow:
    """Parse one customer row. Errors are collected in `.errors`, never raised."""
    row = CustomerRow(row_number, values)
    _fill(row, values, mapping.compiled.get(CUSTOMER) or _compile(mapping, CUSTOMER))
    if not row.identifiers and not row.masked and not row.phone_display and not row.errors:
        columns = [name for t, _, name in mapping.plan if t in IDENTITY_FIELDS]
        row.add_error(
            "、".join(columns), "no phone, e-mail, member number or buyer id to identify", ""
        )
    return row


def parse_order(row_number: int, values: Sequence[Any], mapping: Mapping) -> OrderRow:
    """Parse one order line. Errors are collected in `.errors`, never raised."""
    row = OrderRow(row_number, values, channel=mapping.channel)
    refund_flag = _fill(row, values, mapping.compiled.get(ORDER) or _compile(mapping, ORDER))
    if row.external_order_id is None and not any(
        e.column == mapping.names["external_order_id"] for e in row.errors
    ):
        row.add_error(mapping.names["external_order_id"], "the order number is missing", "")
    _settle_status(row, refund_flag)
    return row


Step = tuple[int, Callable[[Any, Any, str], str | None], str]


def _compile(mapping: Mapping, kind: str) -> tuple[Step, ...]:
    parsers = _CUSTOMER_PARSERS if kind == CUSTOMER else _ORDER_PARSERS
    region = settings.SIYU_PHONE_REGION
    steps = tuple(
        (index, _phone_parser(region) if target == "phone" else parsers[target], column)
        for target, index, column in mapping.plan
    )
    mapping.compiled[kind] = steps
    return steps


def _fill(row: ParsedRow, values: Sequence[Any], steps: tuple[Step, ...]) -> str | None:
    result = None
    for index, parse, column in steps:
        raw = values[index]
        if raw is None:
            continue
        if type(raw) is str:
            raw = raw.strip()
            # Most cells cannot be an empty marker; test the first character before hashing.
            if not raw or (raw[0] in _EMPTY_FIRST and raw in EMPTY):
                continue
        outcome = parse(row, raw, column)
        if outcome is not None:
            result = outcome
    return result


# --------------------------------------------------------------------------------------------
# Field parsers: (row, raw, column) → None; they set attributes or add errors.


def _text(raw: Any) -> str:
    if type(raw) is str:
        return raw
    if type(raw) is float and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime):
        return raw.isoformat(sep=" ")
    return str(raw).strip()


def _unwrap(text: str) -> str:
    """Undo what exporters do to keep Excel from mangling ids: ="123", '123, 123<TAB>."""
    if text[:2] == '="' and text[-1:] == '"':
        text = text[2:-1]
    return text.lstrip("'`").strip()


def _display(value: Any) -> str:
    return "" if value is None else _text(value)


def _limited(target: str) -> Callable[[ParsedRow, Any, str], None]:
    limit = TEXT_LIMITS[target]

    def parse(row: ParsedRow, raw: Any, column: str) -> None:
        text = raw if type(raw) is str else _text(raw)
        if len(text) > limit:
            row.add_error(column, f"longer than {limit} characters", text)
        else:
            setattr(row, target, text)

    return parse


def _identifier_text(row: ParsedRow, raw: Any, column: str) -> str | None:
    text = _unwrap(_text(raw))
    if not text:
        return None
    if len(text) > MAX_VALUE_LENGTH:
        row.add_error(column, f"longer than {MAX_VALUE_LENGTH} characters", text)
        return None
    if CONTROL.search(text):
        row.add_error(column, "must not contain spaces or control characters", text)
        return None
    return text


def _identity(target: str) -> Callable[[ParsedRow, Any, str], None]:
    kind = IDENTITY_FIELDS[target]

    def parse(row: ParsedRow, raw: Any, column: str) -> None:
        text = _unwrap(_text(raw))
        if "*" in text or "＊" in text:  # masked by the platform: display only
            row.masked.append((kind, text))
            return
        text = _identifier_text(row, text, column)
        if text is not None:
            row.identifiers.append((kind, text))
            if target == "member_no":
                row.member_no = text

    return parse


def _phone_parser(region: str) -> Callable[[ParsedRow, Any, str], None]:
    """The phone parser for the default region, its shortcuts resolved once per file.

    An 11-digit number under a prefix where phonenumbers calls every number valid (a plain
    mobile) or every number invalid (a typo) is decided without a round of phonenumbers, which
    costs ~100 µs; anything else goes through normalize_phone, whose answer both shortcuts are.
    """
    valid, invalid = _plain_prefixes(region)

    def parse(row: ParsedRow, raw: Any, column: str) -> None:
        text = raw if type(raw) is str else _text(raw)
        if len(text) == 11 and text.isascii() and text.isdigit():
            prefix = text[:4]
            if prefix in valid:
                row.phone = e164 = "+86" + text
                row.identifiers.append(("phone", e164))
                return
            if prefix in invalid:
                row.add_error(column, f"{text!r} is not a valid phone number", text)
                return
        text = _unwrap(text)
        if MASKED_PHONE.search(text):  # what normalize_phone refuses first; common in exports
            row.phone_display = text
            row.masked.append(("phone", text))
            return
        try:
            e164 = normalize_phone(text)
        except DomainError as exc:
            if EXTENSION.search(re.sub(r"[\s()]", "", text)):
                row.phone_display = text
                row.masked.append(("phone", text))
            else:
                row.add_error(column, exc.message, text)
            return
        row.phone = e164
        row.identifiers.append(("phone", e164))

    return parse


@lru_cache(maxsize=4)
def _plain_prefixes(region: str) -> tuple[frozenset[str], frozenset[str]]:
    """4-digit prefixes under which every 11-digit number is a valid mainland mobile, and
    those under which every one is refused as "not a valid phone number" (CN only; a prefix
    whose numbers differ is in neither)."""
    valid = plain_mobile_prefixes(region)
    if region != "CN":
        return valid, frozenset()

    # Numbers that may start with a carrier code (11xxx, 12xxx, 179xx in China) are worded
    # differently by what follows it: they keep the slow path.
    carrier = PhoneMetadata.metadata_for_region(region).national_prefix_for_parsing or "^$"

    def invalid(number: str) -> bool:
        if re.match(carrier, number):
            return False
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            return False
        return not parsed.extension and not phonenumbers.is_valid_number(parsed)

    tails = ("0000000", "3333333", "5555555", "7777777", "9999999")
    invalid_prefixes = frozenset(
        prefix
        for prefix in map(str, range(1000, 2000))
        if prefix not in valid and all(invalid(prefix + tail) for tail in tails)
    )
    return valid, invalid_prefixes


def _email(row: CustomerRow, raw: Any, column: str) -> None:
    text = _text(raw)
    try:
        value = normalize_email(text)
    except DomainError as exc:
        row.add_error(column, exc.message, text)
        return
    if len(value) > MAX_VALUE_LENGTH:
        row.add_error(column, f"longer than {MAX_VALUE_LENGTH} characters", text)
        return
    row.email = value
    row.identifiers.append(("email", value))


def _gender(row: CustomerRow, raw: Any, column: str) -> None:
    text = _text(raw)
    gender = GENDERS.get(text)
    if gender is None:
        gender = GENDERS.get(text.lower())
    if gender is None:
        row.add_error(column, "unknown gender; use 男 / 女 (or m / f)", text)
    else:
        row.gender = gender


def _birthday(row: CustomerRow, raw: Any, column: str) -> None:
    try:
        value = parse_date(raw)
    except ValueError as exc:
        row.add_error(column, str(exc), raw)
        return
    # Only a birthday in this year or later needs today's date (a clock read per row costs).
    if value.year < 1900 or (value.year >= _THIS_YEAR and value > date.today()):
        row.add_error(column, "birthday is out of range", raw)
    else:
        row.birthday = value


def _tags(row: CustomerRow, raw: Any, column: str) -> None:
    text = _text(raw)
    try:
        tags = split_tags(text)
    except DomainError as exc:
        row.add_error(column, exc.message, text)
        return
    if tags:
        row.tags = tags


def parse_tag(text: str) -> TagName:
    """Split "group:tag" into (group, tag); a bare tag gives (None, tag). Raises DomainError."""
    text = text.strip()
    parts = TAG_GROUP_MARK.split(text, maxsplit=1)
    group, name = (parts[0], parts[1]) if len(parts) == 2 else (None, text)
    if group == "" or not name:
        raise DomainError(f"“{text}”: write a tag as group:tag or just tag", field="tag")
    for part in (group, name):
        if part is not None and len(part) > TAG_NAME_LENGTH:
            raise DomainError(f"“{part}” is longer than {TAG_NAME_LENGTH} characters", field="tag")
    return group, name


def split_tags(text: str) -> list[TagName]:
    """The tags of one cell, each once, in the order written. Raises DomainError."""
    return list(dict.fromkeys(parse_tag(part) for part in TAG_SEPARATORS.split(text) if part))


def _order_id(target: str) -> Callable[[OrderRow, Any, str], None]:
    limit = TEXT_LIMITS[target]

    def parse(row: OrderRow, raw: Any, column: str) -> None:
        if type(raw) is float and not (raw.is_integer() and raw < 2**53):
            row.add_error(column, "the order number was stored as a number and lost digits", raw)
            return
        text = _unwrap(_text(raw))
        if _SCIENTIFIC.fullmatch(text):
            row.add_error(
                column,
                "the order number is in scientific notation (Excel cut its digits); "
                "export it again and keep the column as text",
                text,
            )
        elif len(text) > limit:
            row.add_error(column, f"longer than {limit} characters", text)
        elif CONTROL.search(text):
            row.add_error(column, "must not contain spaces or control characters", text)
        elif text:
            setattr(row, target, text)

    return parse


def _amount(target: str) -> Callable[[OrderRow, Any, str], None]:
    def parse(row: OrderRow, raw: Any, column: str) -> None:
        try:
            setattr(row, target, parse_amount(raw))
        except ValueError as exc:
            row.add_error(column, str(exc), raw)

    return parse


def _moment(target: str) -> Callable[[OrderRow, Any, str], None]:
    low, high = ORDER_YEARS

    def parse(row: OrderRow, raw: Any, column: str) -> None:
        try:
            value = parse_datetime(raw)
        except ValueError as exc:
            row.add_error(column, str(exc), raw)
            return
        if not low <= value.year <= high:
            row.add_error(column, "date is out of range", raw)
        else:
            setattr(row, target, value)

    return parse


def _status(row: OrderRow, raw: Any, column: str) -> None:
    text = _text(raw)
    row.status_raw = text
    status = normalize_status(text)
    if status is None:
        row.add_error(column, f"unknown order status; known: {', '.join(ORDER_STATUSES)}", text)
    else:
        row.status = status


def _refund_status(row: OrderRow, raw: Any, column: str) -> str | None:
    text = _text(raw)
    row.refund_status_raw = text
    return refund_outcome(text)


def _quantity(row: OrderRow, raw: Any, column: str) -> None:
    if type(raw) is int:
        value = raw
    elif type(raw) is str and raw.isascii() and raw.isdigit():
        value = int(raw)
    else:
        try:
            number = Decimal(_text(raw))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number != number.to_integral_value():
            row.add_error(column, "quantity is not a whole number", raw)
            return
        value = int(number)
    if value < 0:
        row.add_error(column, "quantity is negative", raw)
    else:
        row.quantity = value


_IDENTITY_PARSERS = {t: _identity(t) for t in IDENTITY_FIELDS if t not in ("phone", "email")}
_CUSTOMER_PARSERS: dict[str, Callable] = {
    **_IDENTITY_PARSERS,
    "name": _limited("name"),
    "email": _email,
    "gender": _gender,
    "birthday": _birthday,
    "province": _limited("province"),
    "city": _limited("city"),
    "tags": _tags,
    "level": _limited("level"),
}
_ORDER_PARSERS: dict[str, Callable] = {
    **_IDENTITY_PARSERS,
    "external_order_id": _order_id("external_order_id"),
    "line_id": _order_id("line_id"),
    "receiver_name": _limited("receiver_name"),
    "amount": _amount("amount"),
    "status": _status,
    "refund_status": _refund_status,
    "created_at": _moment("created_at"),
    "paid_at": _moment("paid_at"),
    "refund_amount": _amount("refund_amount"),
    "product_id": _limited("product_id"),
    "product_title": _limited("product_title"),
    "sku": _limited("sku"),
    "quantity": _quantity,
    "unit_price": _amount("unit_price"),
}


# --------------------------------------------------------------------------------------------
# Values


def parse_amount(raw: Any) -> Decimal:
    """¥1,234.50 / ￥12 / 12元 / RMB 12 / 12.345 → Decimal with 2 places; ValueError if bad."""
    if type(raw) is str:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            cleaned = _AMOUNT_MARKS.sub("", raw).replace("，", ",").replace("－", "-")
            if "," in cleaned:
                if not _THOUSANDS.fullmatch(cleaned):
                    raise ValueError("amount is not a number") from None
                cleaned = cleaned.replace(",", "")
            try:
                value = Decimal(cleaned)
            except InvalidOperation:
                raise ValueError("amount is not a number") from None
    elif type(raw) is int or type(raw) is Decimal:
        value = Decimal(raw)
    elif type(raw) is float:
        value = Decimal(repr(raw))
    else:
        raise ValueError("amount is not a number")
    if not value.is_finite():
        raise ValueError("amount is not a number")
    if value < 0:
        raise ValueError("amount is negative")
    if value >= MAX_AMOUNT:
        raise ValueError("amount is too large")
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_datetime(raw: Any) -> datetime:
    """An aware datetime from the formats exports use; naive values are China time.

    2024-01-02[ 10:00[:00]], 2024/1/2 9:05, 2024.01.02, 2024年1月2日 10时5分, 20240102,
    20240102100500, ISO 8601 with an offset, Excel serial numbers (45293.5) and the
    datetime/date objects openpyxl returns. Raises ValueError with the reason.
    """
    if type(raw) is str:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            value = _parse_datetime_text(raw)
    elif isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif type(raw) in (int, float):
        value = _from_serial(raw)
    elif isinstance(raw, time):
        raise ValueError("a time without a date")
    else:
        raise ValueError("not a date")
    if value.tzinfo is None:
        return value.replace(tzinfo=CHINA)
    return value


def parse_date(raw: Any) -> date:
    """A calendar date (birthdays): the same formats as parse_datetime, time ignored."""
    if type(raw) is str and len(raw) == 10:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    if isinstance(raw, datetime):
        return (raw.astimezone(CHINA) if raw.tzinfo else raw).date()
    if isinstance(raw, date):
        return raw
    value = parse_datetime(raw)
    return value.astimezone(CHINA).date()


def _parse_datetime_text(text: str) -> datetime:
    if len(text) == 14 and text.isascii() and text.isdigit():  # 20240102100500
        try:
            return datetime.strptime(text, "%Y%m%d%H%M%S")
        except ValueError:
            raise ValueError("not a valid date") from None
    if _SERIAL.fullmatch(text):
        return _from_serial(float(text))
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError("not a date (use 2024-01-02 or 2024-01-02 10:30:00)")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise ValueError("not a valid date") from None


def _from_serial(serial: float) -> datetime:
    if not 1 <= serial <= MAX_EXCEL_SERIAL:
        raise ValueError("not a date")
    # Whole seconds: Excel stores times as fractions of a day and they come back as …59.999.
    return EXCEL_EPOCH + timedelta(seconds=round(serial * 86400))


# --------------------------------------------------------------------------------------------
# Order statuses: Taobao/Tmall (and their API names), JD, Douyin, Youzan, English.

_STATUS_WORDS = {
    "pending": (
        "等待买家付款",
        "待付款",
        "待支付",
        "未付款",
        "未支付",
        "等待付款",
        "等待支付",
        "待买家付款",
        "WAIT_BUYER_PAY",
        "TRADE_NO_CREATE_PAY",
        "pending",
        "unpaid",
    ),
    "paid": (
        "买家已付款,等待卖家发货",
        "等待卖家发货",
        "待发货",
        "等待发货",
        "等待出库",
        "待出库",
        "备货中",
        "已付款",
        "已支付",
        "支付成功",
        "付款成功",
        "退款中",  # money received, refund not final
        "售后中",
        "WAIT_SELLER_SEND_GOODS",
        "paid",
    ),
    "shipped": (
        "卖家已发货,等待买家确认",
        "已发货",
        "部分发货",
        "卖家部分发货",
        "等待确认收货",
        "待收货",
        "已出库",
        "运输中",
        "配送中",
        "WAIT_BUYER_CONFIRM_GOODS",
        "SELLER_CONSIGNED_PART",
        "TRADE_BUYER_SIGNED",
        "shipped",
    ),
    "completed": (
        "交易成功",
        "交易完成",
        "已完成",
        "完成",
        "订单完成",
        "已签收",
        "已收货",
        "TRADE_FINISHED",
        "completed",
        "complete",
        "finished",
    ),
    "cancelled": (
        "交易关闭",
        "已关闭",
        "关闭",
        "已取消",
        "取消",
        "订单取消",
        "(删除)已取消",
        "付款以前,卖家或买家主动关闭交易",
        "TRADE_CLOSED_BY_TAOBAO",
        "cancelled",
        "canceled",
        "closed",
    ),
    "refunded": (
        "付款以后用户退款成功,交易自动关闭",
        "退款成功",
        "已退款",
        "全额退款",
        "退款完成",
        "TRADE_CLOSED",
        "refunded",
    ),
    "partially_refunded": ("部分退款", "部分退款成功", "partially_refunded", "partial_refund"),
}
_STATUS_KEYWORDS = (
    ("部分退款", "partially_refunded"),
    ("退款成功", "refunded"),
    ("已退款", "refunded"),
    ("取消", "cancelled"),
    ("关闭", "cancelled"),
    ("待付款", "pending"),
    ("待支付", "pending"),
    ("等待付款", "pending"),
    ("未付款", "pending"),
    ("未支付", "pending"),
    ("待发货", "paid"),
    ("等待发货", "paid"),
    ("待出库", "paid"),
    ("已付款", "paid"),
    ("已支付", "paid"),
    ("已发货", "shipped"),
    ("待收货", "shipped"),
    ("确认收货", "shipped"),
    ("运输", "shipped"),
    ("配送", "shipped"),
    ("出库", "shipped"),
    ("成功", "completed"),
    ("完成", "completed"),
    ("签收", "completed"),
)
_REFUND_DONE = ("退款成功", "退款完成", "售后完成", "售后成功", "已退款", "退货退款成功")


def _status_key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


_STATUSES = {_status_key(w): status for status, words in _STATUS_WORDS.items() for w in words}


@lru_cache(maxsize=1024)
def normalize_status(text: str) -> str | None:
    """The ORDER_STATUSES value for a platform's status text, or None when unknown."""
    key = _status_key(text)
    status = _STATUSES.get(key)
    if status is None:
        status = next((s for word, s in _STATUS_KEYWORDS if word in key), None)
    return status


@lru_cache(maxsize=1024)
def refund_outcome(text: str) -> str | None:
    """What an after-sale (售后/退款状态) column says: refunded, partially_refunded or None."""
    key = _status_key(text)
    if any(word in key for word in ("关闭", "失败", "拒绝", "取消", "撤销", "无")):
        return None
    if "部分" in key:
        return "partially_refunded"
    if any(word in key for word in _REFUND_DONE) or key in ("refunded", "refund_success"):
        return "refunded"
    return None


def _settle_status(row: OrderRow, refund_flag: str | None) -> None:
    """Refund evidence makes an order (partially) refunded; comparing amounts decides which."""
    if row.status == "pending" or row.errors:
        return
    refund = row.refund_amount
    if refund_flag is None and not refund:
        return
    if refund_flag == "partially_refunded" or (
        refund is not None and row.amount is not None and 0 < refund < row.amount
    ):
        row.status = "partially_refunded"
    else:
        row.status = "refunded"
