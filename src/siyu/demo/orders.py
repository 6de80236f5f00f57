"""The demo brand's platform orders: written as Tmall, JD and Douyin export files and loaded
through the import pipeline, as a brand's own exports would be, so the demo exercises it.

A buyer's orders are a pure function of the seed, the clock and what the customer step made of
them (their number in the run, when they were first seen, their lifecycle stage), drawn from one
random stream per (platform, customer number): the same seed gives the same orders. Order
numbers are bijections of the customer id, so an appended run (--force) never reuses one.
"""

import csv
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path

from siyu.commerce.models import Order
from siyu.core.errors import DomainError
from siyu.customers.models import Channel, Identity
from siyu.demo import data
from siyu.demo.context import SeedContext
from siyu.demo.people import HOURS, PREFIXES, SURNAMES, Weighted
from siyu.imports.models import ImportJob
from siyu.imports.services import import_job_create, import_job_run

# China time has had no daylight saving since 1991: a fixed offset is exact, and much faster.
CHINA = timezone(timedelta(hours=8), "CST")
CENT = Decimal("0.01")
SLOTS = 32  # order numbers per customer and platform: serial = customer id × SLOTS + n

# Orders a buyer places on one platform, by lifecycle stage: (count, weight). LOYAL draws a
# heavy-tailed 5–20, so a minority of repeat buyers carries much of the revenue, as in life.
LOYAL = -1
MAX_ORDERS = 20
ORDER_COUNTS = {
    stage: Weighted(counts)
    for stage, counts in {
        "lead": ((0, 6), (1, 4)),
        "contact": ((0, 5), (1, 5)),
        "engaged": ((0, 4), (1, 6)),
        "first_purchase": ((1, 1),),
        "repeat": ((2, 5), (3, 3), (4, 1), (LOYAL, 1.5)),
        "member": ((2, 3), (3, 3), (4, 2), (LOYAL, 3.5)),
        "at_risk": ((1, 4), (2, 3), (3, 2), (LOYAL, 0.4)),
        "lost": ((1, 6), (2, 3), (3, 1)),
    }.items()
}
# Customers at risk or lost stopped buying a while ago: days since their last order.
QUIET_DAYS = {"at_risk": (90, 240), "lost": (240, 500)}

CANCEL_SHARE = 0.03  # closed before payment
REFUND_SHARE = 0.05  # refunded in full
PARTIAL_SHARE = 0.02  # partly refunded: price protection, a missing or broken item
PENDING_SHARE = 0.3  # of orders placed in the last two days: not paid yet
PROMO_SHARE = 0.2  # of repeat orders: placed in a shopping festival
GIFT_SHARE = 0.08  # shipped to someone else: a friend, a parent
# Shopping festivals (month, first day, last day): 618, 双11 and 双12, with deeper discounts.
FESTIVALS = ((6, 1, 18), (11, 1, 11), (12, 12, 12))
LINES = Weighted(((1, 60), (2, 30), (3, 10)))
QUANTITIES = Weighted(((1, 82), (2, 13), (3, 5)))
PRODUCTS = Weighted((product, product.weight) for product in data.PRODUCTS)
PRODUCT_INDEX = {product.code: index for index, product in enumerate(data.PRODUCTS)}
GIVEN = data.GIVEN_FEMALE + data.GIVEN_MALE


@dataclass(frozen=True, slots=True)
class Buyer:
    customer_id: int
    number: int  # the customer's place in this run: their random stream is keyed by it
    buyer_id: str
    name: str
    phone: str  # E.164, "" when not known
    first_seen_at: datetime
    stage: str
    arrived_here: bool  # first seen through an order on this platform


@dataclass(slots=True)
class Line:
    product: data.Product
    quantity: int
    amount: Decimal  # this line's share of what was paid, after the order's discount
    refund: Decimal = Decimal(0)


@dataclass(slots=True)
class DemoOrder:
    serial: int  # customer id × SLOTS + the order's place in the buyer's history
    buyer: Buyer
    placed_at: datetime
    paid_at: datetime | None
    status: str  # the Order.Status the pipeline should read from the platform's words
    amount: Decimal
    refund: Decimal
    lines: list[Line]
    receiver: str
    phone: str  # as the export shows it: 11 digits, or masked like 138****1234


@dataclass(frozen=True)
class Export:
    """One platform's order export: its file, header, words and habits."""

    code: str  # the channel
    kind: str  # the identity kind of its buyer ids
    file_name: str  # strftime pattern, local time of the export
    encoding: str
    header: tuple[str, ...]
    statuses: dict[str, str]  # Order.Status → what the platform writes
    full_phone: float  # share of rows that show the whole mobile number
    time_format: str
    rows: Callable[["Export", DemoOrder, str], list[list[str]]]  # (export, order, number)
    number: Callable[[int, int], str]  # (serial, offset) → the platform's order number
    # The platform's export has no column the preset maps to its buyer id: map it by hand,
    # as a user would in the console.
    preset: str | None = None
    columns: dict[str, str] | None = None


# --------------------------------------------------------------------------------------------
# Generation: pure functions of the context and a buyer.


def buyer_orders(ctx: SeedContext, export: Export, buyer: Buyer) -> list[DemoOrder]:
    """The orders `buyer` placed on `export`'s platform, oldest first."""
    rng = random.Random(f"{ctx.seed}:orders:{export.code}:{buyer.number}")
    count = ORDER_COUNTS[buyer.stage].pick(rng) if buyer.stage in ORDER_COUNTS else 0
    if count == LOYAL:
        count = _loyal_count(rng)
    # Who else orders are shipped to, and the masked numbers the platform shows.
    other = _receiver_name(rng)
    other_phone = f"{PREFIXES.pick(rng)}****{rng.randrange(10_000):04d}"
    own = buyer.phone[3:] if buyer.phone.startswith("+86") else ""
    own_masked = f"{own[:3]}****{own[-4:]}" if own else other_phone
    if not count:
        return []

    start = buyer.first_seen_at
    end = ctx.now
    if buyer.stage in QUIET_DAYS:
        end -= timedelta(days=rng.uniform(*QUIET_DAYS[buyer.stage]))
    end = min(max(start, end), ctx.now)
    moments = [_moment(rng, start, end, festival=n > 0) for n in range(count)]
    if buyer.arrived_here:  # their first order is what brought them in
        moments[0] = min(start + timedelta(seconds=rng.uniform(60, 7200)), ctx.now)
    moments.sort()

    orders = []
    for n, placed_at in enumerate(moments):
        lines, amount = _lines(rng, placed_at)
        status, paid_at = _status(ctx, rng, placed_at)
        refund = Decimal(0)
        if status == Order.Status.REFUNDED:
            refund = amount
            for line in lines:
                line.refund = line.amount
        elif status == Order.Status.PARTIALLY_REFUNDED:
            # On the first line, where a platform with one row per line shows it first.
            line = lines[0]
            line.refund = max(CENT, (line.amount * rng.randint(10, 50) / 100).quantize(CENT))
            refund = line.refund
        gift = rng.random() < GIFT_SHARE or not buyer.name
        full = rng.random() < export.full_phone
        if gift:
            receiver, phone = other, other_phone
        else:
            receiver, phone = buyer.name, own if own and full else own_masked
        orders.append(
            DemoOrder(
                serial=buyer.customer_id * SLOTS + n,
                buyer=buyer,
                placed_at=placed_at,
                paid_at=paid_at,
                status=status,
                amount=amount,
                refund=refund,
                lines=lines,
                receiver=receiver,
                phone=phone,
            )
        )
    return orders


def _loyal_count(rng: random.Random) -> int:
    """5–20 orders, Pareto-distributed (α 1.6) and cut at 20 without piling up there."""
    low, high, alpha = 5, MAX_ORDERS + 1, 1.6
    tail = 1 - (low / high) ** alpha
    return int(low * (1 - rng.random() * tail) ** (-1 / alpha))


def _receiver_name(rng: random.Random) -> str:
    surname = SURNAMES.pick(rng)
    return surname + rng.choice(GIVEN) + rng.choice(GIVEN)


def _moment(rng: random.Random, start: datetime, end: datetime, *, festival: bool) -> datetime:
    """A time between start and end, at an hour people shop; some repeat orders in festivals."""
    moment = start + (end - start) * rng.random()
    if festival and rng.random() < PROMO_SHARE:
        days = _festival_days(start, end)
        if days:
            moment = rng.choice(days)
    local = moment.astimezone(CHINA).replace(
        hour=HOURS.pick(rng), minute=rng.randrange(60), second=rng.randrange(60), microsecond=0
    )
    return min(max(local.astimezone(start.tzinfo), start), end)


def _festival_days(start: datetime, end: datetime) -> list[datetime]:
    days = []
    for year in range(start.astimezone(CHINA).year, end.astimezone(CHINA).year + 1):
        days += [day for day in _festival_year(year) if start <= day <= end]
    return days


@cache
def _festival_year(year: int) -> tuple[datetime, ...]:
    return tuple(
        datetime(year, month, day, 12, tzinfo=CHINA).astimezone(UTC)
        for month, day_from, day_to in FESTIVALS
        for day in range(day_from, day_to + 1)
    )


def _in_festival(moment: datetime) -> bool:
    local = moment.astimezone(CHINA)
    return any(
        local.month == month and day_from <= local.day <= day_to
        for month, day_from, day_to in FESTIVALS
    )


def _lines(rng: random.Random, placed_at: datetime) -> tuple[list[Line], Decimal]:
    """1–3 products with quantities, and the amount paid after the shop's discount."""
    products: list[data.Product] = []
    for _ in range(LINES.pick(rng)):
        product = PRODUCTS.pick(rng)
        if product not in products:
            products.append(product)
    quantities = [QUANTITIES.pick(rng) for _ in products]
    subtotals = [p.price * q for p, q in zip(products, quantities, strict=True)]
    subtotal = sum(subtotals, Decimal(0))
    if _in_festival(placed_at):
        discount = (subtotal // 300) * 50  # 每满300减50
    elif subtotal >= 199 and rng.random() < 0.35:
        discount = Decimal(20 if subtotal < 399 else 40)  # a shop coupon
    else:
        discount = Decimal(0)
    amount = subtotal - discount
    # The discount is shared by the lines in proportion; the last line takes the rounding.
    shares = [(s * amount / subtotal).quantize(CENT) for s in subtotals[:-1]]
    shares.append(amount - sum(shares, Decimal(0)))
    lines = [
        Line(product=p, quantity=q, amount=a)
        for p, q, a in zip(products, quantities, shares, strict=True)
    ]
    return lines, amount


def _status(
    ctx: SeedContext, rng: random.Random, placed_at: datetime
) -> tuple[str, datetime | None]:
    """Where an order placed then stands now, and when it was paid."""
    paid_at = placed_at + timedelta(seconds=rng.uniform(10, 900))
    age = ctx.now - placed_at
    roll = rng.random()
    if roll < CANCEL_SHARE:
        return Order.Status.CANCELLED, None  # closed unpaid
    if paid_at > ctx.now or (age < timedelta(days=2) and rng.random() < PENDING_SHARE):
        return Order.Status.PENDING, None
    roll -= CANCEL_SHARE
    if roll < REFUND_SHARE:
        return Order.Status.REFUNDED, paid_at
    if roll < REFUND_SHARE + PARTIAL_SHARE:
        return Order.Status.PARTIALLY_REFUNDED, paid_at
    if age < timedelta(days=1):
        status = Order.Status.PAID if rng.random() < 0.6 else Order.Status.SHIPPED
    elif age < timedelta(days=4):
        status = Order.Status.SHIPPED
    elif age < timedelta(days=10):
        status = Order.Status.COMPLETED if rng.random() < 0.7 else Order.Status.SHIPPED
    else:
        status = Order.Status.COMPLETED
    return status, paid_at


# --------------------------------------------------------------------------------------------
# The platforms' export files.


def _mixer(modulus: int, multiplier: int, base: int) -> Callable[[int, int], int]:
    # multiplier is coprime with modulus, so serials below modulus get distinct numbers.
    return lambda serial, offset: base + (serial * multiplier + offset) % modulus


_TAOBAO_NUMBER = _mixer(10**18, 7_368_787_117_461, 2 * 10**18)  # 19 digits
_JD_NUMBER = _mixer(8 * 10**11, 73_687_871, 2 * 10**11)  # 12 digits
_DOUYIN_NUMBER = _mixer(25 * 10**15, 61_803_398_877, 1_725 * 10**15)  # ×4: 19 digits, 69…


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _time(export: Export, moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime(export.time_format) if moment else ""


def _taobao_rows(export: Export, order: DemoOrder, number: str) -> list[list[str]]:
    """One row per order, the titles joined, as in 千牛's 订单报表; ="…" keeps Excel off."""
    status = export.statuses[order.status]
    return [
        [
            f'="{number}"',
            order.buyer.buyer_id,
            _money(order.amount),
            status,
            order.receiver,
            order.phone,
            _time(export, order.placed_at),
            _time(export, order.paid_at),
            "，".join(line.product.title for line in order.lines),
            str(len(order.lines)),
            str(sum(line.quantity for line in order.lines)),
            _money(order.refund),
        ]
    ]


def _jd_rows(export: Export, order: DemoOrder, number: str) -> list[list[str]]:
    """One row per product, with the order's amount and refund repeated on each."""
    status = export.statuses[order.status]
    return [
        [
            number,
            order.buyer.buyer_id,
            _product_id(line.product, 100_012_000_000, 7_919),
            line.product.code,
            line.product.title,
            str(line.quantity),
            _money(line.product.price),
            _money(order.amount),
            status,
            order.receiver,
            order.phone,
            _time(export, order.placed_at),
            _time(export, order.paid_at),
            _money(order.refund),
        ]
        for line in order.lines
    ]


def _douyin_rows(export: Export, order: DemoOrder, number: str) -> list[list[str]]:
    """One row per sub-order with its own amount; ids end in a tab so Excel keeps them."""
    status = export.statuses[order.status]
    refunded = order.status in (Order.Status.REFUNDED, Order.Status.PARTIALLY_REFUNDED)
    main = int(number)
    return [
        [
            f"{main}\t",
            f"{main + index + 1}\t",
            line.product.title,
            _product_id(line.product, 3_612_345_678_900_000_000, 104_729),
            line.product.code,
            str(line.quantity),
            _money(line.product.price),
            _money(line.amount),
            order.receiver,
            order.phone,
            _time(export, order.placed_at),
            _time(export, order.paid_at),
            status,
            "退款成功" if refunded and line.refund else "-",
            _money(line.refund),
            order.buyer.buyer_id,
        ]
        for index, line in enumerate(order.lines)
    ]


def _product_id(product: data.Product, base: int, step: int) -> str:
    return str(base + PRODUCT_INDEX[product.code] * step)


TAOBAO_HEADER = (
    "订单编号", "买家会员名", "买家实际支付金额", "订单状态", "收货人姓名", "联系手机",
    "订单创建时间", "订单付款时间", "宝贝标题", "宝贝种类", "宝贝总数量", "退款金额",
)  # fmt: skip
JD_HEADER = (
    "订单号", "下单帐号", "商品ID", "商家SKUID", "商品名称", "订购数量", "京东价",
    "应付金额", "订单状态", "客户姓名", "联系电话", "下单时间", "付款确认时间",
    "退款金额",
)  # fmt: skip
DOUYIN_HEADER = (
    "主订单编号", "子订单编号", "选购商品", "商品ID", "商家编码", "商品数量",
    "商品单价", "订单应付金额", "收件人", "收件人手机号", "订单提交时间",
    "支付完成时间", "订单状态", "售后状态", "退款金额", "抖音号",
)  # fmt: skip

EXPORTS = [
    Export(
        code="tmall",
        kind="tmall_buyer",
        file_name="ExportOrderList%Y%m%d%H%M.csv",
        encoding="gb18030",  # 千牛 still writes GBK/GB18030
        header=TAOBAO_HEADER,
        statuses={
            Order.Status.PENDING: "等待买家付款",
            Order.Status.PAID: "买家已付款，等待卖家发货",
            Order.Status.SHIPPED: "卖家已发货，等待买家确认",
            Order.Status.COMPLETED: "交易成功",
            Order.Status.CANCELLED: "交易关闭",
            Order.Status.REFUNDED: "交易关闭",  # with 退款金额 = the amount paid
            Order.Status.PARTIALLY_REFUNDED: "交易成功",  # with a smaller 退款金额
        },
        full_phone=0.1,
        time_format="%Y-%m-%d %H:%M:%S",
        rows=_taobao_rows,
        number=lambda serial, offset: str(_TAOBAO_NUMBER(serial, offset)),
    ),
    Export(
        code="jd",
        kind="jd_buyer",
        file_name="京东订单导出_%Y%m%d%H%M%S.csv",
        encoding="utf-8-sig",
        header=JD_HEADER,
        statuses={
            Order.Status.PENDING: "等待付款",
            Order.Status.PAID: "等待出库",
            Order.Status.SHIPPED: "等待确认收货",
            Order.Status.COMPLETED: "完成",
            Order.Status.CANCELLED: "已取消",
            Order.Status.REFUNDED: "已取消",  # with 退款金额 = the amount paid
            Order.Status.PARTIALLY_REFUNDED: "完成",
        },
        full_phone=0.45,
        time_format="%Y-%m-%d %H:%M:%S",
        rows=_jd_rows,
        number=lambda serial, offset: str(_JD_NUMBER(serial, offset)),
    ),
    Export(
        code="douyin",
        kind="douyin_buyer",
        file_name="抖店订单导出_%Y%m%d%H%M%S.csv",
        encoding="utf-8-sig",
        header=DOUYIN_HEADER,
        statuses={
            Order.Status.PENDING: "待支付",
            Order.Status.PAID: "备货中",
            Order.Status.SHIPPED: "已发货",
            Order.Status.COMPLETED: "已完成",
            Order.Status.CANCELLED: "已关闭",
            Order.Status.REFUNDED: "已关闭",  # with 售后状态 退款成功
            Order.Status.PARTIALLY_REFUNDED: "已完成",
        },
        full_phone=0.05,
        time_format="%Y/%m/%d %H:%M:%S",
        rows=_douyin_rows,
        number=lambda serial, offset: str(4 * _DOUYIN_NUMBER(serial, offset)),
        preset="douyin_orders",
        columns={"douyin_buyer": "抖音号"},
    ),
]


def platform_buyers(ctx: SeedContext, export: Export) -> Iterator[Buyer]:
    """The run's live customers with a buyer id on this platform, by customer id.

    One account per platform and customer: a second id of the same kind (never seeded so far)
    is skipped, so order numbers stay unique.
    """
    channel_id = ctx.channels[export.code]
    ids = ctx.customer_ids
    rows = (
        Identity.objects.filter(
            kind=export.kind,
            namespace="",
            customer_id__gte=ids.start,
            customer_id__lt=ids.stop,
            customer__merged_into__isnull=True,
        )
        .order_by("customer_id", "value")
        .values_list(
            "customer_id",
            "value",
            "customer__name",
            "customer__phone",
            "customer__first_seen_at",
            "customer__stage",
            "customer__first_channel_id",
        )
    )
    previous = None
    for customer_id, value, name, phone, first_seen_at, stage, first_channel in rows.iterator(
        chunk_size=5_000
    ):
        if customer_id == previous:
            continue
        previous = customer_id
        yield Buyer(
            customer_id=customer_id,
            number=customer_id - ids.start,
            buyer_id=value,
            name=name,
            phone=phone,
            first_seen_at=first_seen_at,
            stage=stage,
            arrived_here=first_channel == channel_id,
        )


def write_export(ctx: SeedContext, export: Export, path: Path) -> tuple[int, int]:
    """Write the platform's export of every buyer's orders, row by row; (orders, rows)."""
    offset = random.Random(f"{ctx.seed}:order-numbers:{export.code}").getrandbits(64)
    orders = rows = 0
    with path.open("w", newline="", encoding=export.encoding) as f:
        writer = csv.writer(f)
        writer.writerow(export.header)
        for buyer in platform_buyers(ctx, export):
            for order in buyer_orders(ctx, export, buyer):
                lines = export.rows(export, order, export.number(order.serial, offset))
                writer.writerows(lines)
                orders += 1
                rows += len(lines)
    return orders, rows


def seed_orders(ctx: SeedContext) -> None:
    """Orders of the platform buyers: each platform's export written, then imported.

    Raises DomainError with the job's message when an import does not end done and clean.
    """
    channels = {c.code: c for c in Channel.objects.filter(code__in=[e.code for e in EXPORTS])}
    exported_at = ctx.now.astimezone(CHINA)
    with tempfile.TemporaryDirectory(prefix="siyu-demo-orders-") as folder:
        files = []
        ctx.progress.begin("exports", len(EXPORTS))
        for export in EXPORTS:
            path = Path(folder) / exported_at.strftime(export.file_name)
            orders, rows = write_export(ctx, export, path)
            files.append((export, path, orders, rows))
            ctx.progress.advance(1)
        ctx.progress.begin("orders", sum(rows for *_, rows in files))
        for export, path, orders, _ in files:
            channel = channels[export.code]
            before = Order.objects.filter(channel=channel).count()
            job = import_job_create(
                path=path,
                kind=ImportJob.Kind.ORDERS,
                channel=channel,
                preset=export.preset,
                columns=export.columns,
            )
            job = import_job_run(job=job, progress=ctx.progress.advance)
            if job.state != ImportJob.State.DONE or job.invalid:
                first = job.row_errors.order_by("row").first()
                detail = f"; row {first.row}: {first.errors}" if first else ""
                raise DomainError(
                    f"the demo {channel.name} orders did not import ({job.state}, "
                    f"{job.invalid} invalid rows): {job.message}{detail}"
                )
            loaded = Order.objects.filter(channel=channel).count() - before
            if loaded != orders:
                raise DomainError(
                    f"the demo {channel.name} export held {orders} orders, {loaded} were loaded"
                )
            ctx.counts["orders"] += loaded
