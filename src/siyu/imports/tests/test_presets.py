import pytest

from siyu.imports import tag_rows
from siyu.imports.presets import PRESETS, build_mapping, detect, normalize_header
from siyu.imports.readers import ImportFileError
from siyu.imports.rows import parse_customer, parse_order

# Header rows as the platforms' exports have them (column order and the columns we do not
# use included, since they affect detection).
TAOBAO = [
    "订单编号", "买家会员名", "买家支付宝账号", "买家应付货款", "买家应付邮费", "买家支付积分",
    "总金额", "返点积分", "买家实际支付金额", "买家实际支付积分", "订单状态", "买家留言",
    "收货人姓名", "收货地址", "运送方式", "联系电话", "联系手机", "订单创建时间", "订单付款时间",
    "宝贝标题", "宝贝种类", "物流单号", "物流公司", "订单备注", "宝贝总数量", "店铺Id",
    "店铺名称", "订单关闭原因", "卖家服务费", "买家服务费", "发票抬头", "是否手机订单",
    "退款金额", "修改后的收货地址", "确认收货时间",
]  # fmt: skip
JD = [
    "订单号", "商品ID", "商品名称", "订购数量", "支付方式", "下单时间", "京东价", "订单金额",
    "结算金额", "余额支付", "应付金额", "订单状态", "订单类型", "下单帐号", "客户姓名",
    "客户地址", "联系电话", "订单备注", "发票类型", "付款确认时间", "商家SKUID", "商家备注",
]  # fmt: skip
DOUYIN = [
    "主订单编号", "子订单编号", "选购商品", "商品规格", "商品数量", "商品ID", "商家编码",
    "商品单价", "订单应付金额", "运费", "优惠总金额", "支付方式", "收件人", "收件人手机号",
    "省", "市", "区", "街道", "详细地址", "买家留言", "订单提交时间", "支付完成时间",
    "订单完成时间", "订单状态", "售后状态", "取消原因", "商家备注", "达人ID", "达人昵称",
]  # fmt: skip
YOUZAN_ORDERS = [
    "订单号", "订单类型", "订单状态", "商品名称", "商品规格", "商品编码", "商品单价", "商品数量",
    "商品优惠后价格", "订单实付金额", "买家手机号", "收货人/提货人", "收货人手机号/提货人手机号",
    "下单时间", "买家付款时间", "退款状态", "已退款金额", "买家备注",
]  # fmt: skip
YOUZAN_MEMBERS = [
    "客户姓名", "手机号", "性别", "生日", "会员卡号", "会员等级", "积分", "储值余额",
    "成为会员时间", "所在地区", "客户标签", "累计消费金额",
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "kind", "expected"),
    [
        (TAOBAO, "order", "taobao_orders"),
        (JD, "order", "jd_orders"),
        (DOUYIN, "order", "douyin_orders"),
        (YOUZAN_ORDERS, "order", "youzan_orders"),
        (YOUZAN_MEMBERS, "customer", "youzan_members"),
        (["姓名", "手机号", "性别", "生日", "城市"], "customer", "member_list"),
        (["name", "mobile", "gender", "birthday", "city", "email"], "customer", "member_list"),
        (["Name", "Phone", "E-mail", "Tags", "Member No"], "customer", "member_list"),
        (["手机号码"], "customer", "phone_list"),
        (["13812341234"], "customer", "phone_list"),
    ],
)
def test_given_a_platform_export_header_when_detected_then_its_preset_wins(header, kind, expected):
    match = detect(header, kind)

    assert match is not None
    assert match.preset.key == expected
    assert match.score >= 0.3


def test_given_full_taobao_header_when_detected_then_columns_map_to_the_right_headers():
    match = detect(TAOBAO, "order")

    mapped = {target: TAOBAO[i] for target, i in match.columns.items()}
    assert mapped["external_order_id"] == "订单编号"
    assert mapped["tmall_buyer"] == "买家会员名"
    assert mapped["amount"] == "买家实际支付金额"
    assert mapped["phone"] == "联系手机"  # not 联系电话, the landline
    assert mapped["paid_at"] == "订单付款时间"
    assert mapped["quantity"] == "宝贝总数量"
    assert match.score == 1.0


def test_given_douyin_header_when_mapped_then_the_channel_and_line_id_come_with_it():
    mapping = build_mapping(DOUYIN, kind="order")

    assert (mapping.preset, mapping.channel) == ("douyin_orders", "douyin")
    assert mapping.names["line_id"] == "子订单编号"
    assert mapping.names["refund_status"] == "售后状态"


def test_given_header_that_fits_several_presets_when_detected_then_others_are_alternatives():
    header = ["订单号", "订单状态", "商品名称", "下单时间", "付款时间"]

    match = detect(header, "order")

    assert match.preset.key in {"jd_orders", "youzan_orders"}
    assert match.alternatives
    assert all(score <= match.score for _, score in match.alternatives)


def test_given_headerless_phone_list_when_detected_then_first_row_is_data():
    match = detect(["138****1234"], "customer")

    assert match.preset.key == "phone_list"
    assert match.first_row_is_data
    mapping = build_mapping(["13812341234"], kind="customer")
    assert mapping.first_row_is_data
    assert mapping.names == {"phone": "13812341234"}


def test_given_phone_list_with_header_when_mapped_then_header_is_not_data():
    mapping = build_mapping(["手机号"], kind="customer")

    assert (mapping.preset, mapping.first_row_is_data) == ("phone_list", False)


def test_given_order_header_when_detecting_customers_then_no_order_preset_is_offered():
    assert detect(TAOBAO, "customer") is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("买家实际支付金额(元)", "买家实际支付金额"),
        ("订单应付金额（元）", "订单应付金额"),
        (" 手机号 ", "手机号"),
        ("*手机号", "手机号"),
        ("Member No", "memberno"),
        ("member_no", "memberno"),
        ("Ｅ－ｍａｉｌ", "email"),
    ],
)
def test_given_header_variants_when_normalised_then_they_compare_equal(raw, normal):
    assert normalize_header(raw) == normal


def test_given_unknown_columns_when_mapping_without_user_mapping_then_error_lists_headers():
    with pytest.raises(ImportFileError, match="Columns found: 编号, 备注, 数值"):
        build_mapping(["编号", "备注", "数值"], kind="customer")


def test_given_user_mapping_when_built_then_targets_point_at_the_named_headers():
    header = ["客户", "电话号", "会员等级"]

    mapping = build_mapping(
        header, kind="customer", user_mapping={"name": "客户", "phone": "电话号"}
    )

    assert mapping.columns == {"name": 0, "phone": 1}
    assert mapping.preset is None
    assert [t for t, _, _ in mapping.plan] == ["name", "phone"]


def test_given_user_mapping_over_a_preset_when_built_then_user_wins():
    header = [*TAOBAO, "手机号(已解密)"]

    mapping = build_mapping(
        header, kind="order", preset="taobao_orders", user_mapping={"phone": "手机号(已解密)"}
    )

    assert mapping.names["phone"] == "手机号(已解密)"
    assert mapping.names["tmall_buyer"] == "买家会员名"


def test_given_user_mapping_with_unknown_target_when_built_then_error_lists_fields():
    with pytest.raises(ImportFileError, match="'mobile' is not a field of a customer import"):
        build_mapping(["电话"], kind="customer", user_mapping={"mobile": "电话"})


def test_given_user_mapping_naming_a_missing_header_when_built_then_error_lists_headers():
    with pytest.raises(ImportFileError, match=r"'手机' .*not in this file\. Columns found: 电话"):
        build_mapping(["电话"], kind="customer", user_mapping={"phone": "手机"})


def test_given_order_mapping_without_order_number_when_built_then_required_field_is_named():
    with pytest.raises(ImportFileError, match="required field external_order_id"):
        build_mapping(["金额", "手机"], kind="order", user_mapping={"amount": "金额"})


def test_given_customer_mapping_without_any_identifier_when_built_then_error_says_so():
    with pytest.raises(ImportFileError, match="at least one column that identifies"):
        build_mapping(["姓名", "城市"], kind="customer", user_mapping={"name": "姓名"})


def test_given_preset_chosen_that_does_not_fit_when_built_then_error_names_what_is_missing():
    with pytest.raises(ImportFileError, match="does not look like 抖店 订单导出: missing"):
        build_mapping(TAOBAO, kind="order", preset="douyin_orders")


def test_given_unknown_preset_key_when_built_then_error_lists_presets():
    with pytest.raises(ImportFileError, match="unknown preset 'weidian'; presets: taobao_orders"):
        build_mapping(TAOBAO, kind="order", preset="weidian")


def test_given_customer_preset_for_an_order_import_when_built_then_error_says_so():
    with pytest.raises(ImportFileError, match="imports customers, not orders"):
        build_mapping(["手机号"], kind="order", preset="phone_list")


def test_given_a_column_name_twice_when_it_is_imported_then_error_names_both_columns():
    header = ["订单编号", "买家会员名", "买家实际支付金额", "订单编号"]

    with pytest.raises(ImportFileError, match=r"'订单编号' appears twice \(columns A and D\)"):
        build_mapping(header, kind="order")


def test_given_a_column_name_twice_when_it_is_not_imported_then_the_file_maps():
    header = ["姓名", "备注", "手机号", "备注"]

    mapping = build_mapping(header, kind="customer")

    assert mapping.columns == {"name": 0, "phone": 2}


def test_every_preset_has_unique_targets_and_a_known_kind():
    for preset in PRESETS:
        targets = [c.target for c in preset.columns]
        assert len(targets) == len(set(targets)), preset.key
        assert preset.kind in {"customer", "order", "tag"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_every_preset_column_is_a_field_its_rows_can_be_parsed_into(preset):
    header = [c.aliases[0] for c in preset.columns]
    mapping = build_mapping(header, kind=preset.kind, preset=preset.key)
    assert set(mapping.columns) == {c.target for c in preset.columns}

    again = build_mapping(header, kind=preset.kind, preset=preset.key, user_mapping=mapping.names)
    parse = {"customer": parse_customer, "order": parse_order, "tag": tag_rows.parser(again)}
    row = parse[preset.kind](2, ["" for _ in header], again)

    assert again == mapping
    assert row.row == 2


@pytest.mark.parametrize("header", [["13812341234"], ["手机号"], TAOBAO, DOUYIN])
def test_given_a_saved_mapping_when_rebuilt_from_preset_and_names_then_it_is_the_same(header):
    kind = "customer" if len(header) == 1 else "order"
    first = build_mapping(header, kind=kind)

    again = build_mapping(header, kind=kind, preset=first.preset, user_mapping=first.names)

    assert again == first
    assert again.first_row_is_data == (header == ["13812341234"])
