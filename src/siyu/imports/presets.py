"""Column mappings: which header of an export feeds which target field.

A preset describes one platform's export: for each target field, the header names it goes by
(aliases, in order of preference). `detect()` scores every preset against a header row and
returns the best; `build_mapping()` turns a preset and/or the user's own mapping
{target_field: header_name} into the column indexes the row parser reads.

The header names below are written from the platforms' export files as merchants know them
(Taobao/Tmall 千牛 订单报表, JD 商家后台 订单导出, 抖店 订单导出, 有赞 订单/客户导出). Exports
change now and then; an alias list is the place to add a new name. Headers are compared after
normalising: NFKC (full-width letters and brackets), lower case, no spaces, underscores,
hyphens or leading "*", and without a trailing unit such as "(元)".
"""

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from siyu.imports.readers import ImportFileError, column_letter

CUSTOMER = "customer"
ORDER = "order"
TAG = "tag"
KINDS = (CUSTOMER, ORDER, TAG)

# Target field → identity kind (siyu.customers.models.Identity.Kind) for identifier fields.
IDENTITY_FIELDS = {
    "phone": "phone",
    "email": "email",
    "member_no": "store_member_no",
    "tmall_buyer": "tmall_buyer",
    "jd_buyer": "jd_buyer",
    "douyin_buyer": "douyin_buyer",
    "xiaohongshu_buyer": "xiaohongshu_buyer",
    "wechat_unionid": "wechat_unionid",
    "wecom_external_userid": "wecom_external_userid",
}
BUYER_FIELDS = (
    "tmall_buyer",
    "jd_buyer",
    "douyin_buyer",
    "xiaohongshu_buyer",
    "wechat_unionid",
    "wecom_external_userid",
)
TARGETS = {
    CUSTOMER: (
        "name",
        "phone",
        "email",
        "gender",
        "birthday",
        "province",
        "city",
        "tags",
        "level",  # a membership level: a tag of the level group
        "member_no",
        *BUYER_FIELDS,
    ),
    ORDER: (
        "external_order_id",
        "line_id",  # the sub-order (line) id where the export has one row per line
        *BUYER_FIELDS,
        "phone",
        "receiver_name",
        "amount",
        "status",
        "refund_status",  # 售后状态: adjusts status to refunded / partially_refunded
        "created_at",
        "paid_at",
        "refund_amount",
        "product_id",
        "product_title",
        "sku",
        "quantity",
        "unit_price",
    ),
    # A tags file names existing customers; the tags column may be left out when the job
    # gives one tag for every row.
    TAG: ("phone", "email", "member_no", *BUYER_FIELDS, "tags"),
}
REQUIRED = {CUSTOMER: (), ORDER: ("external_order_id",), TAG: ()}
# A customer row must carry at least one of these, or it cannot be matched to anyone.
CUSTOMER_IDENTIFIERS = ("phone", "email", "member_no", *BUYER_FIELDS)
THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class Column:
    """One target field: its header aliases and its weight in detection.

    weight 2-3 = distinctive of this export, 1 = usual, 0 = mapped when present but not scored.
    """

    target: str
    aliases: tuple[str, ...]
    required: bool = False
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Preset:
    key: str
    label: str
    kind: str  # CUSTOMER | ORDER | TAG
    channel: str  # source platform ("tmall", "jd", "douyin", "youzan"; "" when unknown)
    columns: tuple[Column, ...]
    single_column: bool = False  # only matches a one-column file (a phone list)

    @property
    def total_weight(self) -> int:
        return sum(c.weight * (2 if c.required else 1) for c in self.columns)


@dataclass(frozen=True, slots=True)
class PresetMatch:
    preset: Preset
    score: float  # 0..1: weighted share of the preset's columns found
    columns: dict[str, int]  # target → column index
    alternatives: tuple[tuple[str, float], ...] = ()  # other presets above the threshold
    first_row_is_data: bool = False


@dataclass(frozen=True, slots=True)
class Mapping:
    """Where each target field is read from. Build it with build_mapping().

    first_row_is_data: the file has no header (a bare phone list); read it with
    `table.rows(include_header=True)`.
    """

    kind: str
    columns: dict[str, int]  # target → column index
    names: dict[str, str]  # target → the header as the user sees it (for error messages)
    preset: str | None = None
    channel: str = ""
    first_row_is_data: bool = False
    plan: tuple[tuple[str, int, str], ...] = field(default=(), compare=False)
    # Filled by rows.py: the plan with its field parsers resolved, once per mapping.
    compiled: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Left to right, as the user reads the row, so errors come out in that order.
        plan = tuple(
            (t, i, self.names[t]) for t, i in sorted(self.columns.items(), key=lambda c: c[1])
        )
        object.__setattr__(self, "plan", plan)


def _c(target: str, *aliases: str, required: bool = False, weight: int = 1) -> Column:
    return Column(target, aliases, required=required, weight=weight)


PHONE_ALIASES = (
    "手机号",
    "手机号码",
    "手机",
    "mobile",
    "mobilephone",
    "phone",
    "phonenumber",
    "tel",
    "电话",
    "电话号码",
    "联系电话",
    "联系方式",
    "联系手机",
    "客户手机",
    "客户手机号",
    "会员手机号",
    "买家手机号",
)

PRESETS: list[Preset] = [
    Preset(
        key="taobao_orders",
        label="淘宝/天猫 订单导出",
        kind=ORDER,
        channel="tmall",
        columns=(
            _c("external_order_id", "订单编号", "订单号", "淘宝订单号", "订单ID", required=True),
            _c("line_id", "子订单编号", "子订单号", weight=0),
            _c("tmall_buyer", "买家会员名", "买家昵称", "买家账号", "买家ID", weight=2),
            _c("amount", "买家实际支付金额", "实际支付金额", "实付金额", "总金额", weight=2),
            _c("status", "订单状态"),
            _c("receiver_name", "收货人姓名", "收货人"),
            # 联系电话 in these exports is a landline, 联系手机 the mobile.
            _c("phone", "联系手机", "收货人手机", "收货人手机号", "联系电话"),
            _c("created_at", "订单创建时间", "创建时间", "下单时间", weight=2),
            _c("paid_at", "订单付款时间", "付款时间", weight=2),
            _c("product_title", "宝贝标题", "商品标题", "标题"),
            _c("product_id", "宝贝ID", "商品ID", weight=0),
            _c("sku", "商家编码", "商家SKU编码", "SKU编码", weight=0),
            _c("quantity", "宝贝总数量", "宝贝数量", "购买数量"),
            _c("unit_price", "宝贝单价", "价格", "单价", weight=0),
            _c("refund_amount", "退款金额"),
        ),
    ),
    Preset(
        key="jd_orders",
        label="京东 订单导出",
        kind=ORDER,
        channel="jd",
        columns=(
            _c("external_order_id", "订单号", "订单编号", required=True),
            _c("jd_buyer", "下单帐号", "下单账号", "客户账号", "用户账号", "京东账号", weight=2),
            _c("amount", "应付金额", "订单金额", "实付金额", "结算金额", weight=2),
            _c("status", "订单状态"),
            _c("receiver_name", "客户姓名", "收货人", "收货人姓名"),
            _c("phone", "联系电话", "客户手机", "收货人手机", "手机号"),
            _c("created_at", "下单时间", weight=2),
            _c("paid_at", "付款确认时间", "付款时间", "支付时间", weight=2),
            _c("product_title", "商品名称"),
            _c("product_id", "商品ID", "商品编号", "SKU", weight=0),
            _c("sku", "商家SKUID", "商家编码", "货号", weight=0),
            _c("quantity", "订购数量", "商品数量", "数量"),
            _c("unit_price", "京东价", "商品单价", "单价", weight=0),
            _c("refund_amount", "退款金额", weight=0),
        ),
    ),
    Preset(
        key="douyin_orders",
        label="抖店 订单导出",
        kind=ORDER,
        channel="douyin",
        columns=(
            _c("external_order_id", "主订单编号", "主订单号", required=True, weight=2),
            _c("line_id", "子订单编号", "子订单号", weight=2),
            _c("douyin_buyer", "抖音号", "买家抖音号", "用户抖音号", weight=0),
            _c("product_title", "选购商品", "商品名称", weight=2),
            _c("quantity", "商品数量"),
            _c("amount", "订单应付金额", "实付金额", "支付金额"),
            _c("receiver_name", "收件人", "收件人姓名"),
            _c("phone", "收件人手机号", "收件人电话", "收件人手机", weight=2),
            _c("created_at", "订单提交时间", "下单时间", weight=2),
            _c("paid_at", "支付完成时间", "支付时间", weight=2),
            _c("status", "订单状态"),
            _c("refund_status", "售后状态"),
            _c("product_id", "商品ID", weight=0),
            _c("sku", "商家编码", "SKU编码", weight=0),
            _c("unit_price", "商品单价", "单价", weight=0),
            _c("refund_amount", "退款金额", weight=0),
        ),
    ),
    Preset(
        key="youzan_orders",
        label="有赞 订单导出",
        kind=ORDER,
        channel="youzan",
        columns=(
            _c("external_order_id", "订单号", "订单编号", required=True),
            _c("phone", "买家手机号", "收货人手机号", "收货人/提货人手机号", weight=2),
            _c("amount", "订单实付金额", "实付金额", weight=2),
            _c("status", "订单状态"),
            _c("created_at", "订单创建时间", "下单时间", "创建时间"),
            _c("paid_at", "买家付款时间", "付款时间", weight=2),
            _c("product_title", "商品名称"),
            _c("receiver_name", "收货人/提货人", "收货人姓名", "收货人"),
            _c("quantity", "商品数量", weight=0),
            _c("unit_price", "商品单价", "单价", weight=0),
            _c("sku", "商品编码", "规格编码", "商家编码", weight=0),
            _c("refund_amount", "退款金额", "已退款金额", weight=0),
            _c("refund_status", "退款状态", "售后状态", "维权状态", weight=0),
        ),
    ),
    Preset(
        key="youzan_members",
        label="有赞 客户/会员导出",
        kind=CUSTOMER,
        channel="youzan",
        columns=(
            # Only 会员卡号 and 客户姓名 tell this export from a generic member list.
            _c("name", "客户姓名", "姓名", "会员姓名", weight=0),
            _c("phone", "手机号", "手机号码"),
            _c("gender", "性别"),
            _c("birthday", "生日"),
            _c("member_no", "会员卡号", "卡号", weight=3),
            _c("level", "会员等级", weight=0),
            _c("province", "省份", "所在省份", weight=0),
            _c("city", "城市", "所在城市", weight=0),
            _c("tags", "客户标签", "标签", weight=0),
            _c("wechat_unionid", "微信unionid", "unionid", weight=0),
        ),
    ),
    Preset(
        key="member_list",
        label="会员名单（通用）",
        kind=CUSTOMER,
        channel="",
        columns=(
            _c("name", "姓名", "name", "客户姓名", "会员姓名", "真实姓名", "fullname"),
            _c("phone", *PHONE_ALIASES, weight=2),
            _c("gender", "性别", "gender", "sex"),
            _c("birthday", "生日", "birthday", "出生日期", "birthdate", "dateofbirth"),
            _c("province", "省份", "province", "省", "所在省份"),
            _c("city", "城市", "city", "所在城市", "市"),
            _c("email", "邮箱", "email", "e-mail", "电子邮箱", "邮件", "mail"),
            _c("tags", "标签", "tags", "tag", "客户标签"),
            _c("level", "会员等级", "会员级别", "等级", "level", weight=0),
            _c("member_no", "会员号", "member_no", "membernumber", "会员编号", "会员卡号", "卡号"),
            _c("wechat_unionid", "unionid", "微信unionid", weight=0),
            _c("wecom_external_userid", "external_userid", "外部联系人ID", weight=0),
            _c("tmall_buyer", "淘宝会员名", "淘宝账号", "旺旺号", "天猫会员名", weight=0),
            _c("jd_buyer", "京东账号", "京东用户名", weight=0),
            _c("douyin_buyer", "抖音号", "抖音ID", weight=0),
            _c("xiaohongshu_buyer", "小红书号", "小红书ID", weight=0),
        ),
    ),
    Preset(
        key="phone_list",
        label="手机号名单",
        kind=CUSTOMER,
        channel="",
        columns=(_c("phone", *PHONE_ALIASES, "号码", required=True),),
        single_column=True,
    ),
    Preset(
        key="tag_list",
        label="客户标签表（手机号/会员号 + 标签）",
        kind=TAG,
        channel="",
        columns=(
            _c("phone", *PHONE_ALIASES, weight=3),
            _c(
                "tags",
                "标签",
                "tags",
                "tag",
                "客户标签",
                "会员标签",
                "用户标签",
                "企微标签",
                "标签名称",
                "标签名",
                weight=2,
            ),
            _c("email", "邮箱", "email", "e-mail", "电子邮箱", "邮件", "mail"),
            _c("member_no", "会员号", "member_no", "membernumber", "会员编号", "会员卡号", "卡号"),
            _c("wecom_external_userid", "external_userid", "externaluserid", "外部联系人ID"),
            _c("wechat_unionid", "unionid", "微信unionid", weight=0),
            _c("tmall_buyer", "淘宝会员名", "淘宝账号", "旺旺号", "天猫会员名", weight=0),
            _c("jd_buyer", "京东账号", "京东用户名", weight=0),
            _c("douyin_buyer", "抖音号", "抖音ID", weight=0),
            _c("xiaohongshu_buyer", "小红书号", "小红书ID", weight=0),
        ),
    ),
    Preset(
        key="tag_phone_list",
        label="手机号名单（整份打同一个标签）",
        kind=TAG,
        channel="",
        columns=(_c("phone", *PHONE_ALIASES, "号码", required=True),),
        single_column=True,
    ),
]
PRESETS_BY_KEY = {p.key: p for p in PRESETS}

_UNIT = re.compile(r"\((?:元|rmb|cny|¥|人民币)\)$")
_SEPARATORS = re.compile(r"[\s_\-*]+")
# A header cell that is itself a phone number (or a masked one): the file has no header.
_LOOKS_LIKE_PHONE = re.compile(r"\+?[\d\s\-()*＊xX]{7,20}")


@lru_cache(maxsize=4096)
def normalize_header(name: str) -> str:
    text = unicodedata.normalize("NFKC", str(name)).lower()
    return _UNIT.sub("", _SEPARATORS.sub("", text))


def _alias_index(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        if name:
            index.setdefault(normalize_header(name), i)
    return index


def _match(preset: Preset, index: dict[str, int]) -> tuple[float, dict[str, int]] | None:
    columns: dict[str, int] = {}
    used: set[int] = set()
    got = 0
    for column in preset.columns:
        found = next(
            (
                index[a]
                for a in map(normalize_header, column.aliases)
                if a in index and index[a] not in used
            ),
            None,
        )
        if found is None:
            if column.required:
                return None
            continue
        columns[column.target] = found
        used.add(found)
        got += column.weight * (2 if column.required else 1)
    return got / preset.total_weight, columns


def _fit(
    preset: Preset, header: list[str], index: dict[str, int]
) -> tuple[float, dict[str, int], bool] | None:
    """(score, columns, first_row_is_data) of a preset on a header, None if it cannot apply."""
    if preset.single_column:
        named = [(i, h) for i, h in enumerate(header) if h]
        if len(named) != 1:
            return None
        only, name = named[0]
        if normalize_header(name) not in {normalize_header(a) for a in preset.columns[0].aliases}:
            if not _LOOKS_LIKE_PHONE.fullmatch(name):
                return None
            return 1.0, {preset.columns[0].target: only}, True  # no header: row 1 is data
    result = _match(preset, index)
    return None if result is None else (*result, False)


def detect(header: list[str], kind: str | None = None) -> PresetMatch | None:
    """The preset that best fits this header row (of `kind`, if given), or None.

    Scores are the weighted share of a preset's columns present; the best at or above
    THRESHOLD wins, ties going to the one that maps more columns. The others that passed are
    returned in `alternatives` so a console can offer them.
    """
    index = _alias_index(header)
    scored: list[tuple[float, float, Preset, dict[str, int], bool]] = []
    for order, preset in enumerate(PRESETS):
        if kind is not None and preset.kind != kind:
            continue
        fit = _fit(preset, header, index)
        if fit is None or fit[0] < THRESHOLD:
            continue
        score, columns, headerless = fit
        scored.append((score, len(columns) - order / 100, preset, columns, headerless))
    if not scored:
        return None
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    score, _, preset, columns, headerless = scored[0]
    return PresetMatch(
        preset=preset,
        score=round(score, 3),
        columns=columns,
        alternatives=tuple((p.key, round(s, 3)) for s, _, p, _, _ in scored[1:]),
        first_row_is_data=headerless,
    )


def build_mapping(
    header: list[str],
    *,
    kind: str,
    preset: str | Preset | None = None,
    user_mapping: dict[str, str] | None = None,
) -> Mapping:
    """The mapping for reading rows of `kind` ("customer" | "order" | "tag") from `header`.

    preset: a key of PRESETS (or the Preset) to use; None with no user_mapping → detect().
    user_mapping: {target_field: header_name}, applied over the preset's columns (so a user
    can fix one column of a detected preset); a value of None or "" unmaps that target.
    Raises ImportFileError naming the headers found when nothing fits, a header or target
    does not exist, or a required field is not mapped.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    found = ", ".join(h for h in header if h) or "(none)"
    chosen: Preset | None = None
    columns: dict[str, int] = {}
    first_row_is_data = False
    if isinstance(preset, Preset):
        chosen = preset
    elif preset:
        chosen = PRESETS_BY_KEY.get(preset)
        if chosen is None:
            raise ImportFileError(
                f"unknown preset {preset!r}; presets: {', '.join(PRESETS_BY_KEY)}"
            )
    elif not user_mapping:
        match = detect(header, kind)
        if match is None:
            raise ImportFileError(
                f"the columns of this file do not match any known export; map them by hand. "
                f"Columns found: {found}"
            )
        chosen, columns = match.preset, dict(match.columns)
        first_row_is_data = match.first_row_is_data
    if chosen is not None:
        if chosen.kind != kind:
            raise ImportFileError(f"the preset {chosen.label} imports {chosen.kind}s, not {kind}s")
        if not columns:
            fit = _fit(chosen, header, _alias_index(header))
            if fit is None:
                missing = [
                    f"{c.target} ({' / '.join(c.aliases[:3])})"
                    for c in chosen.columns
                    if c.required
                ]
                raise ImportFileError(
                    f"this file does not look like {chosen.label}: missing "
                    f"{', '.join(missing)}. Columns found: {found}"
                )
            _, columns, first_row_is_data = fit
    for target, name in (user_mapping or {}).items():
        if target not in TARGETS[kind]:
            raise ImportFileError(
                f"{target!r} is not a field of a {kind} import; fields: {', '.join(TARGETS[kind])}"
            )
        if not name:
            columns.pop(target, None)
            continue
        wanted = str(name).strip()
        if wanted not in header:
            raise ImportFileError(
                f"the column {wanted!r} (for {target}) is not in this file. Columns found: {found}"
            )
        columns[target] = header.index(wanted)
    missing = [t for t in REQUIRED[kind] if t not in columns]
    if missing:
        raise ImportFileError(
            f"no column is mapped to the required field {', '.join(missing)}. "
            f"Columns found: {found}"
        )
    if kind in (CUSTOMER, TAG) and not any(t in columns for t in CUSTOMER_IDENTIFIERS):
        raise ImportFileError(
            "map at least one column that identifies a customer ("
            + ", ".join(CUSTOMER_IDENTIFIERS)
            + f"). Columns found: {found}"
        )
    for index in columns.values():
        mapped = header[index] if index < len(header) else ""
        twice = [i for i, name in enumerate(header) if mapped and name == mapped]
        if len(twice) > 1:  # which of them was meant?
            raise ImportFileError(
                f"the column {mapped!r} appears twice (columns "
                f"{column_letter(twice[0])} and {column_letter(twice[1])}); rename one of them "
                "so it is clear which to import"
            )
    names = {
        t: (header[i] if i < len(header) and header[i] else f"column {i + 1}")
        for t, i in columns.items()
    }
    return Mapping(
        kind=kind,
        columns=columns,
        names=names,
        preset=chosen.key if chosen else None,
        channel=chosen.channel if chosen else "",
        first_row_is_data=first_row_is_data,
    )
