"""What the demo brand is made of: names, regions, stores, channels and staff personas.

Weights are rough shares, not statistics to quote: surnames follow the order of the most
common mainland surnames, regions lean towards the east coast where the brand's stores are.
"""

from dataclasses import dataclass
from decimal import Decimal

BRAND = "花间集"
DEMO_PASSWORD = "siyu-demo"

# (surname, weight in ‰ of people)
SURNAMES = [
    ("王", 71), ("李", 70), ("张", 67), ("刘", 51), ("陈", 46), ("杨", 32), ("黄", 25),
    ("赵", 23), ("吴", 21), ("周", 20), ("徐", 16), ("孙", 15), ("马", 15), ("朱", 14),
    ("胡", 14), ("郭", 12), ("何", 12), ("林", 12), ("高", 12), ("罗", 10), ("郑", 10),
    ("梁", 10), ("谢", 8), ("宋", 8), ("唐", 8), ("许", 7), ("韩", 7), ("冯", 7), ("邓", 7),
    ("曹", 7), ("彭", 6), ("曾", 6), ("肖", 6), ("田", 6), ("董", 6), ("袁", 5), ("潘", 5),
    ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 5), ("杜", 5), ("叶", 5), ("程", 5), ("苏", 4),
    ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4), ("沈", 4), ("姚", 4), ("卢", 4), ("姜", 4),
    ("崔", 4), ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3),
    ("廖", 3), ("贾", 3), ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 3), ("邹", 3),
    ("孟", 3), ("熊", 3), ("秦", 3), ("邱", 3), ("江", 3), ("尹", 2), ("薛", 2), ("闫", 2),
    ("段", 2), ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2),
    ("顾", 2), ("毛", 2), ("郝", 2), ("龚", 2), ("邵", 2), ("万", 2), ("钱", 2), ("严", 2),
    ("武", 2), ("戴", 2), ("莫", 1), ("孔", 1), ("向", 1), ("汤", 1), ("欧阳", 1), ("上官", 1),
]  # fmt: skip

# Characters of given names; a given name is one of them (a third of people) or two.
GIVEN_FEMALE = (
    "芳娜敏静丽艳娟霞秀婷雪琳慧颖倩欣怡佳梦雨晶玲燕萍红丹蕾璐瑶琪思悦涵萱诗晓月"
    "雅文婉清美心妍舒宁馨蓉菲薇洁莉岚露媛巧凤洋彤"
)
GIVEN_MALE = (
    "伟强磊军洋勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林峰建国志文博"
    "晨阳子轩然睿泽瑞成亮东海"
)

# (province, city, weight); the first rows are where the stores are.
REGIONS = [
    ("上海", "上海", 120), ("浙江", "杭州", 70), ("江苏", "南京", 50), ("江苏", "苏州", 55),
    ("浙江", "宁波", 25), ("浙江", "温州", 18), ("江苏", "无锡", 20), ("江苏", "常州", 12),
    ("北京", "北京", 60), ("天津", "天津", 15), ("广东", "广州", 45), ("广东", "深圳", 50),
    ("广东", "东莞", 15), ("广东", "佛山", 12), ("四川", "成都", 35), ("重庆", "重庆", 22),
    ("湖北", "武汉", 25), ("湖南", "长沙", 20), ("河南", "郑州", 18), ("山东", "济南", 14),
    ("山东", "青岛", 16), ("福建", "厦门", 14), ("福建", "福州", 12), ("安徽", "合肥", 16),
    ("陕西", "西安", 16), ("辽宁", "沈阳", 9), ("辽宁", "大连", 8), ("河北", "石家庄", 8),
    ("江西", "南昌", 9), ("云南", "昆明", 9), ("广西", "南宁", 7), ("黑龙江", "哈尔滨", 6),
    ("吉林", "长春", 5), ("山西", "太原", 6), ("贵州", "贵阳", 6), ("海南", "海口", 4),
    ("新疆", "乌鲁木齐", 3), ("内蒙古", "呼和浩特", 3), ("甘肃", "兰州", 3),
]  # fmt: skip

# Mobile prefixes (China Mobile, Unicom, Telecom); any 8 digits after them are valid numbers.
PHONE_PREFIXES = [
    ("138", 9), ("139", 9), ("137", 7), ("136", 7), ("135", 7), ("134", 4), ("150", 5),
    ("151", 5), ("152", 4), ("157", 3), ("158", 6), ("159", 6), ("182", 5), ("183", 3),
    ("187", 5), ("188", 5), ("198", 4), ("130", 4), ("131", 4), ("132", 4), ("155", 3),
    ("156", 4), ("185", 4), ("186", 6), ("166", 3), ("176", 3), ("133", 4), ("153", 3),
    ("180", 4), ("181", 3), ("189", 5), ("177", 3), ("173", 2), ("199", 4), ("191", 2),
]  # fmt: skip

# (code, name, city, province, short name for teams and remarks)
STORES = [
    ("SH01", "上海静安嘉里中心店", "上海", "上海", "静安"),
    ("SH02", "上海徐汇港汇店", "上海", "上海", "徐汇"),
    ("HZ01", "杭州湖滨银泰店", "杭州", "浙江", "湖滨"),
    ("NJ01", "南京新街口德基店", "南京", "江苏", "新街口"),
    ("SZ01", "苏州观前店", "苏州", "江苏", "观前"),
]
STAFF_PER_STORE = [7, 7, 7, 7, 6]


@dataclass(frozen=True)
class ChannelInfo:
    """A source channel of the demo brand and how the customers it brings look."""

    code: str
    name: str
    kind: str
    share: float  # share of new customers two years ago
    growth: float  # added to the share, linearly, by today
    cac: int  # spend per new customer, CNY
    phone: float  # probability a customer from here left a mobile number
    friend: float  # probability they added a staff member on WeCom
    buyer: dict[str, float]  # platform buyer id kinds and their probabilities
    states: tuple[str, ...]  # channel code states (活码) customers came in by


CHANNELS = [
    ChannelInfo(
        code="tmall",
        name="天猫旗舰店",
        kind="public",
        share=30,
        growth=-10,
        cac=38,
        phone=0.7,
        friend=0.55,
        buyer={"tmall_buyer": 1.0},
        states=("tmall-order-sms", "tmall-vip-card", "tmall-after-sale"),
    ),
    ChannelInfo(
        code="jd",
        name="京东自营",
        kind="public",
        share=12,
        growth=-4,
        cac=42,
        phone=0.75,
        friend=0.5,
        buyer={"jd_buyer": 1.0},
        states=("jd-order-card", "jd-service"),
    ),
    ChannelInfo(
        code="douyin",
        name="抖音小店",
        kind="public",
        share=8,
        growth=14,
        cac=55,
        phone=0.6,
        friend=0.5,
        buyer={"douyin_buyer": 1.0},
        states=("douyin-shop-card", "douyin-fans-group"),
    ),
    ChannelInfo(
        code="xiaohongshu",
        name="小红书",
        kind="public",
        share=5,
        growth=6,
        cac=48,
        phone=0.5,
        friend=0.55,
        buyer={"xiaohongshu_buyer": 1.0},
        states=("xhs-note-qr", "xhs-shop-card"),
    ),
    ChannelInfo(
        code="store",
        name="门店",
        kind="offline",
        share=22,
        growth=-6,
        cac=12,
        phone=0.95,
        friend=0.75,
        buyer={},
        states=("store-counter-qr", "store-receipt", "store-event"),
    ),
    ChannelInfo(
        code="parcel-card",
        name="包裹卡",
        kind="public",
        share=14,
        growth=-2,
        cac=6,
        phone=0.85,
        friend=0.9,
        buyer={"tmall_buyer": 0.6, "jd_buyer": 0.4},
        states=("parcel-card-v2", "parcel-card-v3", "parcel-card-gift"),
    ),
    ChannelInfo(
        code="live",
        name="直播",
        kind="public",
        share=4,
        growth=6,
        cac=30,
        phone=0.6,
        friend=0.7,
        buyer={"douyin_buyer": 0.8},
        states=("live-qr-weekly", "live-qr-618"),
    ),
    ChannelInfo(
        code="referral",
        name="老带新",
        kind="private",
        share=5,
        growth=6,
        cac=15,
        phone=0.8,
        friend=0.95,
        buyer={},
        states=("referral-poster", "referral-gift-card"),
    ),
]

# Personas (人设): what a customer sees of an advisor on WeCom.
PERSONA_TITLES = ["护肤顾问", "美妆顾问", "会员管家", "肌肤管理师", "彩妆师"]
PERSONA_SPECIALTIES = [
    "敏感肌修护",
    "抗初老",
    "控油祛痘",
    "美白提亮",
    "底妆搭配",
    "换季护理",
    "孕期护肤",
    "男士护肤",
]
PERSONA_SIGNATURES = [
    "每天分享一个护肤小技巧 🌸",
    "你的专属护肤顾问，有问必答",
    "认真对待每一寸肌肤",
    "会员福利第一时间通知你 ✨",
    "不推销，只推荐适合你的",
    "周三上新，周五福利，记得来看看",
    "敏感肌也能放心美",
    "陪你把皮肤养好",
]
PERSONA_OFFERS = [
    "生日当月送小样礼盒",
    "每周三会员日专享折扣",
    "新品试用优先报名",
    "免费肌肤检测，到店或线上都可以",
    "护肤问题随时私信我",
]


@dataclass(frozen=True, eq=False)  # compared by identity: one object per catalogue item
class Product:
    """One item of the brand's online catalogue, the same on every platform."""

    code: str  # 商家编码: the brand's own SKU code, shown in every platform's export
    title: str  # the listing title, with the selling points shoppers search for
    price: Decimal  # list price, CNY
    weight: float  # how often it is bought, relative to the others


# The online catalogue: skincare first, some make-up, body care, gift sets and trial kits.
PRODUCTS = [
    Product("HJ-CL-120", "花间集氨基酸温和洁面乳120g 敏感肌可用 深层清洁", Decimal("129"), 9),
    Product("HJ-CL-200", "花间集山茶花温和卸妆油200ml 乳化快 不糊眼", Decimal("169"), 6),
    Product("HJ-TN-150", "花间集玫瑰保湿精华水150ml 补水保湿 爽肤水", Decimal("199"), 8),
    Product("HJ-TN-200", "花间集积雪草舒缓爽肤水200ml 泛红修护 湿敷", Decimal("159"), 6),
    Product("HJ-SR-B30", "花间集玻色因紧致精华液30ml 抗初老 淡化细纹", Decimal("459"), 7),
    Product("HJ-SR-N30", "花间集烟酰胺亮肤精华30ml 提亮肤色 改善暗沉", Decimal("299"), 8),
    Product("HJ-SR-O30", "花间集山茶花修护精华油30ml 屏障修护 以油养肤", Decimal("329"), 4),
    Product("HJ-SR-V15", "花间集VC焕亮安瓶精华1.5ml*14支 早C晚A", Decimal("239"), 4),
    Product("HJ-EY-015", "花间集多肽淡纹眼霜15g 淡化黑眼圈 细纹", Decimal("299"), 5),
    Product("HJ-CR-050", "花间集山茶花修护面霜50g 敏感肌修护 保湿滋润", Decimal("399"), 9),
    Product("HJ-LO-100", "花间集神经酰胺保湿乳100ml 清爽不黏腻 乳液", Decimal("229"), 6),
    Product("HJ-GL-050", "花间集清爽控油保湿凝露50g 油皮适用", Decimal("189"), 4),
    Product("HJ-MK-H05", "花间集玻尿酸补水面膜5片装 急救补水 提亮", Decimal("99"), 10),
    Product("HJ-MK-C10", "花间集积雪草舒缓面膜10片装 晒后修护 泛红", Decimal("169"), 7),
    Product("HJ-MK-S80", "花间集山茶花睡眠面膜80g 免洗 熬夜急救", Decimal("139"), 4),
    Product("HJ-MK-M100", "花间集净澈清洁泥膜100g 去黑头 收缩毛孔", Decimal("149"), 4),
    Product("HJ-SP-050", "花间集清透防晒乳SPF50+ PA++++ 50ml 军训户外", Decimal("169"), 8),
    Product("HJ-SP-P40", "花间集温和物理防晒霜40ml 敏感肌孕妇可用", Decimal("189"), 3),
    Product("HJ-LP-01", "花间集丝绒雾面口红#01花朝 显白不拔干", Decimal("159"), 5),
    Product("HJ-LP-03", "花间集丝绒雾面口红#03绛唇 复古红棕", Decimal("159"), 4),
    Product("HJ-LP-G02", "花间集水光唇釉#02蜜桃乌龙 镜面水润", Decimal("139"), 3),
    Product("HJ-CU-N15", "花间集水光气垫粉底SPF35 自然色 遮瑕持妆", Decimal("269"), 5),
    Product("HJ-FD-030", "花间集轻薄持妆粉底液30ml 控油不脱妆", Decimal("239"), 4),
    Product("HJ-PW-008", "花间集柔焦定妆蜜粉8g 控油定妆 细腻柔雾", Decimal("179"), 3),
    Product("HJ-BR-02", "花间集极细防水眉笔#02灰棕 自带眉刷", Decimal("79"), 4),
    Product("HJ-BD-250", "花间集山茶花香氛身体乳250ml 滋润留香", Decimal("139"), 4),
    Product("HJ-HC-3x30", "花间集护手霜三支装30g*3 山茶花 白茶 玫瑰", Decimal("89"), 5),
    Product("HJ-GS-RP3", "花间集山茶花修护礼盒(水+乳+霜) 送女友生日礼物", Decimal("799"), 3),
    Product("HJ-GS-AG4", "花间集抗初老四件套(精华+眼霜+面霜+水) 礼盒装", Decimal("1299"), 2),
    Product("HJ-TR-MINI", "花间集明星小样旅行装(洁面+水+精华+面霜)", Decimal("59"), 5),
    Product("HJ-TR-NEW", "花间集新客体验装 面霜5g+精华5ml U先试用", Decimal("19.9"), 6),
]
