"""The demo brand's customers as plain row tuples: a pure function of the context, no queries.

People come in blocks of BLOCK; each block has its own random stream seeded by (seed, block),
so the rows do not depend on how many blocks are generated or inserted at a time. Identifier
values are bijections of the customer id, so they are unique without checking.
"""

import random
from base64 import urlsafe_b64encode
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from math import expm1, log1p

from siyu.customers.identifiers import pinyin_of
from siyu.demo import data
from siyu.demo.context import Link, SeedContext

BLOCK = 1_000
WINDOW_DAYS = 730
# New customers per day grow by e^GROWTH (about 4.5×) over the window.
GROWTH = 1.5
# Local hour of day at which people show up: evenings after work are busiest.
HOUR_WEIGHTS = [
    1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3, 4, 4.5,
    5, 4.5, 4, 4, 4, 4, 4.5, 5.5, 7, 7.5, 6, 3,
]  # fmt: skip
REMOVED_SHARE = 0.04  # relationships ended (deleted or blocked) by now
SECOND_FRIEND_SHARE = 0.08  # customers who also added a second advisor of the same store
UNIONID_SHARE = 0.6  # friends whose WeChat unionid is known
CROSS_BUY_SHARE = 0.05  # chance to also be a buyer on each other platform
MEMBER_SHARE = 0.08  # non-store customers who also hold a store membership
BIRTHDAY_SHARE = 0.45

CUSTOMER_COLUMNS = (
    "id", "name", "name_pinyin", "name_initials", "gender", "birthday", "province", "city",
    "phone", "phone_tail", "owner_id", "store_id", "first_channel_id", "first_seen_at", "stage",
    "consent_sms", "consent_email", "created_at", "updated_at",
)  # fmt: skip
IDENTITY_COLUMNS = ("customer_id", "kind", "namespace", "value", "channel_id", "created_at")
RELATIONSHIP_COLUMNS = (
    "customer_id", "staff_id", "added_at", "channel_id", "state", "remark", "status",
    "removed_at", "removed_by",
)  # fmt: skip

PLATFORMS = {
    "tmall_buyer": "tmall",
    "jd_buyer": "jd",
    "douyin_buyer": "douyin",
    "xiaohongshu_buyer": "xiaohongshu",
}
STAGES_NEW = (("lead", 4), ("contact", 4), ("engaged", 2))
STAGES_RECENT = (
    ("lead", 1), ("contact", 5), ("engaged", 6), ("first_purchase", 6), ("repeat", 2),
)  # fmt: skip
STAGES_OLD = (
    ("engaged", 2), ("first_purchase", 5), ("repeat", 5), ("member", 3), ("at_risk", 4),
    ("lost", 3),
)  # fmt: skip


@dataclass
class Batch:
    customers: list[tuple] = field(default_factory=list)
    identities: list[tuple] = field(default_factory=list)
    relationships: list[tuple] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


class Weighted:
    """Draws items by weight with one random number and a binary search."""

    def __init__(self, pairs) -> None:
        pairs = list(pairs)
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(weight for _, weight in pairs))

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cum, rng.random() * self.cum[-1])]


SURNAMES = Weighted(data.SURNAMES)
REGIONS = Weighted(((p, c), w) for p, c, w in data.REGIONS)
PREFIXES = Weighted(data.PHONE_PREFIXES)
HOURS = Weighted(enumerate(HOUR_WEIGHTS))
GENDERS = Weighted((("f", 72), ("m", 23), ("", 5)))
AGES = Weighted((age, 3 if 25 <= age <= 38 else 1) for age in range(18, 61))
SPLIT_PLATFORMS = Weighted(
    (("tmall_buyer", 5), ("jd_buyer", 2), ("douyin_buyer", 2), ("xiaohongshu_buyer", 1))
)
CHANNEL_INFO = {info.code: info for info in data.CHANNELS}
# Channel mix by tenth of the window: Douyin, Xiaohongshu and live streams grow, Tmall shrinks.
CHANNELS_BY_TENTH = [
    Weighted((info.code, info.share + info.growth * (tenth + 0.5) / 10) for info in data.CHANNELS)
    for tenth in range(10)
]
STAGES = {
    age: Weighted(stages)
    for age, stages in (("new", STAGES_NEW), ("recent", STAGES_RECENT), ("old", STAGES_OLD))
}


def person_name(rng: random.Random, gender: str) -> tuple[str, str, str]:
    """A Chinese name with its pinyin and initials, pinyin taken per part so the cache hits."""
    surname = SURNAMES.pick(rng)
    male = gender == "m" or (not gender and rng.random() < 0.5)
    pool = data.GIVEN_MALE if male else data.GIVEN_FEMALE
    given = rng.choice(pool) if rng.random() < 0.3 else rng.choice(pool) + rng.choice(pool)
    surname_pinyin, surname_initials = pinyin_of(surname)
    given_pinyin, given_initials = pinyin_of(given)
    return surname + given, surname_pinyin + given_pinyin, surname_initials + given_initials


class Keys:
    """Identifier values as bijections of a customer id: unique, stable, random-looking."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"{seed}:keys")
        kinds = (*PLATFORMS, "phone", "wecom", "unionid")
        self.offsets = {kind: rng.getrandbits(160) for kind in kinds}

    def _mix(self, kind: str, number: int, modulus: int, multiplier: int) -> int:
        # multiplier is coprime with modulus, so this permutes 0 … modulus-1.
        return (number * multiplier + self.offsets[kind]) % modulus

    def phone(self, number: int, prefix: str) -> str:
        return f"+86{prefix}{self._mix('phone', number, 10**8, 40_503_617):08d}"

    def buyer(self, kind: str, number: int) -> str:
        if kind == "tmall_buyer":
            return f"tb{self._mix(kind, number, 10**10, 7_368_787_117):010d}"
        if kind == "jd_buyer":
            return f"jd_{self._mix(kind, number, 16**12, 0x9E3779B1):012x}"
        if kind == "douyin_buyer":
            return f"dy{self._mix(kind, number, 10**11, 61_803_398_877):011d}"
        return f"{self._mix(kind, number, 16**24, 0x9E3779B97F4A7C15F39CC061):024x}"

    def wecom_external(self, number: int) -> str:
        mixed = self._mix("wecom", number, 2**144, 0x9E3779B97F4A7C15F39CC0605CEDC835)
        return "wm" + urlsafe_b64encode(mixed.to_bytes(18, "big")).decode()

    def unionid(self, number: int) -> str:
        mixed = self._mix("unionid", number, 2**144, 0xC2B2AE3D27D4EB4F165667B19E3779F9)
        return "o6_b" + urlsafe_b64encode(mixed.to_bytes(18, "big")).decode()


class People:
    """Generates the rows of the demo brand's people, block by block."""

    def __init__(self, ctx: SeedContext) -> None:
        self.ctx = ctx
        self.keys = Keys(ctx.seed)
        self.stride = ctx.customers // ctx.splits if ctx.splits else 0
        self.staff = Weighted((s, s.weight) for s in ctx.staff)
        self.staff_by_store = [
            Weighted((s, s.weight) for s in ctx.staff if s.store_index == index)
            for index in range(len(ctx.stores))
        ]
        self.stores = Weighted(
            (index, 3 if store.city == "上海" else 2) for index, store in enumerate(ctx.stores)
        )
        self.blocks = -(-ctx.customers // BLOCK)

    def block(self, index: int, batch: Batch) -> None:
        """Append the rows of people index*BLOCK … (index+1)*BLOCK-1 to `batch`."""
        rng = random.Random(f"{self.ctx.seed}:people:{index}")
        stride, splits = self.stride, self.ctx.splits
        for number in range(index * BLOCK, min(self.ctx.customers, (index + 1) * BLOCK)):
            split = bool(stride) and number % stride == stride // 2 and number // stride < splits
            self._person(rng, batch, number, split)

    def _person(self, rng: random.Random, batch: Batch, number: int, split: bool) -> None:
        ctx, keys = self.ctx, self.keys
        customer_id = ctx.customer_ids[number]
        # Stratified by person number, so customer ids grow with first_seen_at, as in real life.
        position = log1p((number + rng.random()) / ctx.customers * expm1(GROWTH)) / GROWTH
        days_ago = int((1 - position) * WINDOW_DAYS)
        seen_at = _moment(ctx, rng, days_ago)
        code = CHANNELS_BY_TENTH[min(int(position * 10), 9)].pick(rng)
        info = CHANNEL_INFO[code]
        channel_id = ctx.channels[code]

        gender = GENDERS.pick(rng)
        name, pinyin, initials = person_name(rng, gender)
        birthday = _birthday(rng, ctx.now.date()) if rng.random() < BIRTHDAY_SHARE else None
        store_index = self.stores.pick(rng) if code == "store" else None
        if store_index is not None and rng.random() < 0.85:
            store = ctx.stores[store_index]
            province, city = store.province, store.city
        else:
            province, city = REGIONS.pick(rng)

        # (kind, value, channel id, learned at)
        idents: list[tuple[str, str, int, datetime]] = []
        buyers = [kind for kind, share in info.buyer.items() if rng.random() < share]
        buyers += [k for k in PLATFORMS if k not in buyers and rng.random() < CROSS_BUY_SHARE]
        phone = ""
        if split or rng.random() < info.phone:
            phone = keys.phone(customer_id, PREFIXES.pick(rng))
            idents.append(("phone", phone, channel_id, seen_at))

        relationships: list[tuple] = []
        owner_id = None
        if ctx.staff and rng.random() < info.friend:
            pool = self.staff_by_store[store_index] if store_index is not None else self.staff
            owner = pool.pick(rng)
            owner_id, store_index = owner.id, owner.store_index
            added_at = _added_at(ctx, rng, code, seen_at)
            relationships.append(_relationship(ctx, rng, customer_id, owner.id, added_at, info))
            if rng.random() < SECOND_FRIEND_SHARE:
                second = self.staff_by_store[owner.store_index].pick(rng)
                if second.id != owner.id:
                    later = added_at + (ctx.now - added_at) * rng.random()
                    relationships.append(
                        _relationship(ctx, rng, customer_id, second.id, later, info)
                    )
            external = keys.wecom_external(customer_id)
            idents.append(("wecom_external_userid", external, channel_id, added_at))
            if rng.random() < UNIONID_SHARE:
                idents.append(("wechat_unionid", keys.unionid(customer_id), channel_id, added_at))
        if not idents and not buyers:
            # Every customer is known by something; a mobile number is the commonest.
            phone = keys.phone(customer_id, PREFIXES.pick(rng))
            idents.append(("phone", phone, channel_id, seen_at))
        store_id = ctx.stores[store_index].id if store_index is not None else None
        if store_id and (code == "store" or rng.random() < MEMBER_SHARE):
            member_no = f"{ctx.stores[store_index].code}{customer_id:08d}"
            idents.append(("store_member_no", member_no, ctx.channels["store"], seen_at))

        if split:
            # The same person also bought on a platform under ids nothing links to them yet.
            buyers = buyers or [SPLIT_PLATFORMS.pick(rng)]
            record_id = ctx.customer_ids[ctx.customers + number // self.stride]
            other = (name, pinyin, initials, gender, province, city)
            self._split_record(rng, batch, record_id, buyers, other, seen_at, phone)
        else:
            for kind in buyers:
                platform = ctx.channels[PLATFORMS[kind]]
                idents.append((kind, keys.buyer(kind, customer_id), platform, seen_at))

        if relationships:
            relationships = [_remark(rng, row, name, phone) for row in relationships]
        stage = _stage(rng, days_ago)
        consent_sms = (rng.random() < 0.88) if phone and rng.random() < 0.7 else None
        batch.customers.append((
            customer_id, name, pinyin, initials, gender, birthday, province, city,
            phone, phone[-4:], owner_id, store_id, channel_id, seen_at, stage,
            consent_sms, None, seen_at, seen_at,
        ))  # fmt: skip
        batch.identities.extend(
            (customer_id, kind, "", value, ch, at) for kind, value, ch, at in idents
        )
        batch.relationships.extend(relationships)

    def _split_record(
        self,
        rng: random.Random,
        batch: Batch,
        record_id: int,
        buyers: list[str],
        person: tuple,
        seen_at: datetime,
        phone: str,
    ) -> None:
        """A second record of a person, from a platform order with buyer ids and no phone."""
        ctx, keys = self.ctx, self.keys
        name, pinyin, initials, gender, province, city = person
        code = PLATFORMS[buyers[0]]
        # Sometimes the platform saw them first; then this record survives the merge.
        other_seen = seen_at + timedelta(days=rng.uniform(-60, 60))
        other_seen = min(max(other_seen, ctx.now - timedelta(days=WINDOW_DAYS)), ctx.now)
        if rng.random() < 0.3:
            name, pinyin, initials = "", "", ""  # a platform profile with a nickname only
        batch.customers.append((
            record_id, name, pinyin, initials, gender, None, province, city,
            "", "", None, None, ctx.channels[code], other_seen, "first_purchase",
            None, None, other_seen, other_seen,
        ))  # fmt: skip
        for kind in buyers:
            channel_id = ctx.channels[PLATFORMS[kind]]
            value = keys.buyer(kind, record_id)
            batch.identities.append((record_id, kind, "", value, channel_id, other_seen))
        linked_at = max(seen_at, other_seen) + timedelta(hours=rng.uniform(1, 24 * 30))
        batch.links.append(
            Link(
                phone=phone,
                kind=buyers[0],
                value=keys.buyer(buyers[0], record_id),
                channel=code,
                seen_at=min(linked_at, ctx.now),
            )
        )


def _moment(ctx: SeedContext, rng: random.Random, days_ago: int) -> datetime:
    """A local time of day on the day `days_ago` before the clock; today only up to now."""
    seconds = HOURS.pick(rng) * 3600 + rng.random() * 3600
    if days_ago == 0 and seconds > ctx.seconds_today:
        # Later today has not happened yet: the same hour on one of the past days instead.
        days_ago = rng.randint(1, 7)
    return ctx.today_start - timedelta(days=days_ago) + timedelta(seconds=seconds)


def _birthday(rng: random.Random, today: date) -> date:
    year = today.year - AGES.pick(rng)
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _added_at(ctx: SeedContext, rng: random.Random, code: str, seen_at: datetime) -> datetime:
    if code in ("store", "live"):
        delay = timedelta(seconds=rng.uniform(30, 1800))  # scanned the code on the spot
    else:
        delay = timedelta(hours=rng.expovariate(1 / 36))  # after the parcel or SMS arrived
    return min(seen_at + delay, ctx.now)


def _relationship(ctx, rng, customer_id, staff_id, added_at, info) -> tuple:
    status, removed_at, removed_by = "active", None, ""
    if rng.random() < REMOVED_SHARE:
        # Many delete an advisor within days of adding them, the rest at any time since.
        if rng.random() < 0.4:
            removed_at = added_at + timedelta(hours=rng.expovariate(1 / 48))
        else:
            removed_at = added_at + (ctx.now - added_at) * rng.random()
        removed_by = "customer" if rng.random() < 0.85 else "staff"
        if removed_at <= ctx.now:  # else it has not happened yet
            status = "removed"
        else:
            removed_at, removed_by = None, ""
    return (
        customer_id, staff_id, added_at, ctx.channels[info.code], rng.choice(info.states),
        "", status, removed_at, removed_by,
    )  # fmt: skip


def _remark(rng: random.Random, row: tuple, name: str, phone: str) -> tuple:
    """The note an advisor types for a new friend: usually the name, often the phone tail."""
    roll = rng.random()
    remark = f"{name} {phone[-4:]}" if roll < 0.5 and phone else (name if roll < 0.7 else "")
    return (*row[:5], remark, *row[6:])


def _stage(rng: random.Random, days_ago: int) -> str:
    if days_ago < 7:
        return STAGES["new"].pick(rng)
    return STAGES["recent" if days_ago < 60 else "old"].pick(rng)
