"""Seeding the demo brand: an ordered list of steps over one shared SeedContext.

Later features add their own step (orders, events, referrals, groups) to STEPS; a step reads
what the earlier ones left in the context and bulk-inserts its rows.
"""

import random
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from siyu.core.bulk import bulk_insert, load_mode, reserve_ids
from siyu.core.errors import DomainError
from siyu.customers.models import Channel, Customer, Identity, Relationship
from siyu.customers.services import customer_resolve
from siyu.demo import data
from siyu.demo.context import NoProgress, Progress, SeedContext, StaffRef, StoreRef
from siyu.demo.orders import seed_orders
from siyu.demo.people import (
    BLOCK,
    CUSTOMER_COLUMNS,
    IDENTITY_COLUMNS,
    RELATIONSHIP_COLUMNS,
    Batch,
    People,
    person_name,
)
from siyu.org.models import Staff, Store, Team
from siyu.segments.services import clv_recompute, rfm_recompute, stages_recompute

Step = Callable[[SeedContext], None]
HQ_TEAM = "总部私域运营组"
MERGE_REASON = "订单同时带有手机号和平台买家号"
FIRST_CHANNEL = CUSTOMER_COLUMNS.index("first_channel_id")


def seed_org(ctx: SeedContext) -> None:
    """Stores, teams and the demo logins with their personas; reused when already there."""
    rng = random.Random(f"{ctx.seed}:org")
    stores = []
    for code, name, city, province, short in data.STORES:
        store, _ = Store.objects.get_or_create(code=code, defaults={"name": name, "city": city})
        stores.append(StoreRef(store.pk, code, store.name, city, province, short))
    ctx.stores = stores
    hq, _ = Team.objects.get_or_create(name=HQ_TEAM, store=None)
    teams = [
        [
            Team.objects.get_or_create(name=f"{store.short}{kind}", store_id=store.id)[0]
            for kind in ("导购组", "会员组")
        ]
        for store in stores
    ]

    logins = [("admin", Staff.Role.ADMIN, None)]
    logins += [(f"manager{i + 1:02d}", Staff.Role.MANAGER, i) for i in range(len(stores))]
    number = 0
    for index, count in enumerate(data.STAFF_PER_STORE):
        for _ in range(count):
            number += 1
            logins.append((f"staff{number:02d}", Staff.Role.STAFF, index))
    existing = {
        s.user.username: s
        for s in Staff.objects.select_related("user").filter(
            user__username__in=[username for username, _, _ in logins]
        )
    }
    # One hash for every demo login: the password is public, and each PBKDF2 hash takes ~0.5 s.
    password = make_password(data.DEMO_PASSWORD)
    wecom_ids: set[str] = set(
        Staff.objects.exclude(wecom_userid=None).values_list("wecom_userid", flat=True)
    )
    refs = []
    for position, (username, role, store_index) in enumerate(logins):
        # Draw the persona even for an existing login, so the others do not change.
        persona = _persona(rng, role, ctx.now.date())
        staff = existing.get(username)
        if staff is None:
            staff = _staff_create(
                username=username,
                role=role,
                store_id=stores[store_index].id if store_index is not None else None,
                team=hq if store_index is None else teams[store_index][position % 2],
                persona=persona,
                password=password,
                wecom_ids=wecom_ids,
            )
        weight = 0.0 if role == Staff.Role.ADMIN else rng.uniform(0.4, 1.6)
        if role == Staff.Role.MANAGER:
            weight *= 0.25  # managers run the store; their advisors make most friends
        if store_index is not None and staff.store_id == stores[store_index].id:
            refs.append(StaffRef(staff.pk, store_index, weight))
    ctx.staff = refs
    ctx.counts["staff"] = len(logins)


def _persona(rng: random.Random, role: str, today: date) -> dict:
    """The staff member's name and how they present themselves to customers on WeCom."""
    gender = "f" if rng.random() < 0.8 else "m"
    name, pinyin, _ = person_name(rng, gender)
    title = {Staff.Role.ADMIN: "私域运营负责人", Staff.Role.MANAGER: "店长"}.get(
        role, rng.choice(data.PERSONA_TITLES)
    )
    given = name[-1]
    called = "小" + given if rng.random() < 0.6 else given * 2
    introduction = (
        f"我是{called}，{data.BRAND}{title}，{rng.randint(2, 9)}年护肤行业经验，"
        f"擅长{rng.choice(data.PERSONA_SPECIALTIES)}。{rng.choice(data.PERSONA_OFFERS)}，"
        "有任何问题随时找我～"
    )
    return {
        "name": name,
        "pinyin": pinyin,
        "nickname": f"{data.BRAND}{title}·{called}",
        "signature": rng.choice(data.PERSONA_SIGNATURES),
        "introduction": introduction,
        "joined_at": today - timedelta(days=rng.randint(60, 1500)),
    }


def _staff_create(
    *,
    username: str,
    role: str,
    store_id: int | None,
    team: Team,
    persona: dict,
    password: str,
    wecom_ids: set[str],
) -> Staff:
    admin = role == Staff.Role.ADMIN
    user = get_user_model().objects.create(
        username=username, password=password, is_staff=admin, is_superuser=admin
    )
    fields = dict(persona)
    # WeCom user ids default to the pinyin of the name, numbered when taken.
    pinyin = fields.pop("pinyin")
    wecom_userid, suffix = pinyin, 1
    while wecom_userid in wecom_ids:
        suffix += 1
        wecom_userid = f"{pinyin}{suffix}"
    wecom_ids.add(wecom_userid)
    return Staff.objects.create(
        user=user,
        role=role,
        store_id=store_id,
        team=team,
        wecom_userid=wecom_userid,
        can_view_pii=admin,
        **fields,
    )


def seed_channels(ctx: SeedContext) -> None:
    """The source channels; their spend is added once the customers are counted."""
    for info in data.CHANNELS:
        channel, _ = Channel.objects.get_or_create(
            code=info.code, defaults={"name": info.name, "kind": info.kind}
        )
        ctx.channels[info.code] = channel.pk


def seed_customers(ctx: SeedContext) -> None:
    """Customers with identities and relationships, generated and inserted in chunks."""
    ctx.customer_ids = reserve_ids(Customer, ctx.customers + ctx.splits)
    people = People(ctx)
    ctx.progress.begin("customers", len(ctx.customer_ids))
    per_chunk = max(1, ctx.chunk_size // BLOCK)
    # Into empty tables, indexes are built faster once at the end than row by row.
    fresh = not Customer.objects.exists()
    by_channel: Counter[int] = Counter()
    with load_mode(Customer, Identity, Relationship) if fresh else nullcontext():
        for first in range(0, people.blocks, per_chunk):
            blocks = range(first, min(people.blocks, first + per_chunk))
            _insert_chunk(ctx, people, blocks, by_channel)
        ctx.progress.begin("indexes", 1)
    ctx.progress.advance(1)
    # Spend follows the customers each channel brought, so acquisition cost looks real.
    for info in data.CHANNELS:
        spend = Decimal(info.cac * by_channel[ctx.channels[info.code]]).quantize(Decimal("0.01"))
        Channel.objects.filter(code=info.code).update(spend=F("spend") + spend)


def _insert_chunk(ctx: SeedContext, people: People, blocks: range, by_channel: Counter) -> None:
    batch = Batch()
    for block in blocks:
        people.block(block, batch)
    by_channel.update(row[FIRST_CHANNEL] for row in batch.customers)
    ctx.counts["customer records"] += bulk_insert(Customer, CUSTOMER_COLUMNS, batch.customers)
    ctx.counts["identities"] += bulk_insert(Identity, IDENTITY_COLUMNS, batch.identities)
    ctx.counts["relationships"] += bulk_insert(
        Relationship, RELATIONSHIP_COLUMNS, batch.relationships
    )
    ctx.links.extend(batch.links)
    ctx.progress.advance(len(batch.customers))


def seed_merges(ctx: SeedContext) -> None:
    """Link each split person's two records by an order, through the real resolution service."""
    channels = {c.code: c for c in Channel.objects.filter(code__in=ctx.channels)}
    ctx.progress.begin("merges", len(ctx.links))
    for link in ctx.links:
        result = customer_resolve(
            identifiers=[("phone", link.phone), (link.kind, link.value)],
            channel=channels[link.channel],
            seen_at=link.seen_at,
            reason=MERGE_REASON,
        )
        ctx.counts["merges"] += len(result.merged_ids)
        ctx.progress.advance(1)


def seed_layers(ctx: SeedContext) -> None:
    """RFM scores, super users, lifetime value and lifecycle stages, computed from the orders
    as the worker does."""
    ctx.progress.begin("layers", 3)
    ctx.counts["rfm scored"] = rfm_recompute(as_of=ctx.now).scored
    ctx.progress.advance(1)
    fit = clv_recompute(as_of=ctx.now)
    ctx.counts["clv scored"] = 0 if fit.failure else fit.customers
    ctx.progress.advance(1)
    ctx.counts["stage changes"] = sum(stages_recompute(as_of=ctx.now).values())
    ctx.progress.advance(1)


STEPS: list[Step] = [
    seed_org, seed_channels, seed_customers, seed_merges, seed_orders, seed_layers
]  # fmt: skip
# Steps that need the orders; `orders=False` leaves them out.
ORDER_STEPS = (seed_orders, seed_layers)


def seed_clock(today: date | None = None) -> datetime:
    """Now, or the end of `today` (local time) when given and already past, for repeatable runs."""
    now = timezone.now()
    if today is None:
        return now
    end = datetime.combine(today, time(23, 59, 59), tzinfo=timezone.get_default_timezone())
    return min(end, now).astimezone(UTC)


def demo_seed(
    *,
    customers: int,
    seed: int = 42,
    today: date | None = None,
    append: bool = False,
    progress: Progress | None = None,
    chunk_size: int = 20_000,
    orders: bool = True,
) -> SeedContext:
    """Generate the demo brand in one transaction and return the context with its counts.

    orders=False leaves out the platform orders (and their imports), e.g. for a quick run at a
    million customers.

    Raises DomainError when the database already has customers and `append` is not set.
    """
    if customers < 0:
        raise DomainError("the number of customers cannot be negative", field="customers")
    existing = Customer.objects.count()
    if existing and not append:
        raise DomainError(
            f"the database already has {existing} customers; seeding is for an empty database "
            "(append anyway with --force, or skip quietly with --if-empty)"
        )
    ctx = SeedContext(
        seed=seed,
        customers=customers,
        now=seed_clock(today),
        progress=progress or NoProgress(),
        chunk_size=chunk_size,
    )
    with transaction.atomic():
        for step in STEPS:
            if orders or step not in ORDER_STEPS:
                step(ctx)
    return ctx
