"""The state the seed steps share: the run's parameters, its clock and the ids made so far."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.utils import timezone

# Customers who arrive twice, as two records merged later by resolution: about 1 in 100, but
# never so many that the one-by-one resolution calls dominate a large run.
SPLIT_EVERY = 100
MAX_SPLITS = 2_000


class Progress(Protocol):
    def begin(self, label: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class NoProgress:
    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass(frozen=True)
class StoreRef:
    id: int
    code: str
    name: str
    city: str
    province: str
    short: str


@dataclass(frozen=True)
class StaffRef:
    id: int
    store_index: int  # position in SeedContext.stores
    weight: float  # how many new friends this person makes, relative to the others


@dataclass(frozen=True)
class Link:
    """An order that carries identifiers of two records of one person, so resolution merges."""

    phone: str
    kind: str
    value: str
    channel: str
    seen_at: datetime


@dataclass
class SeedContext:
    """Everything the steps read and what they leave for the steps after them.

    The same seed, number of customers and clock give the same rows; absolute times follow the
    clock, everything else (people, identifiers, offsets from the clock) does not.
    """

    seed: int
    customers: int
    now: datetime  # aware; the newest thing seeded happened at or before it
    progress: Progress = field(default_factory=NoProgress)
    chunk_size: int = 20_000  # people generated and inserted at a time; bounds memory
    stores: list[StoreRef] = field(default_factory=list)
    staff: list[StaffRef] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)  # code → id
    # Reserved customer ids: one per person, then one per split-off second record.
    customer_ids: range = range(0)
    links: list[Link] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        local = timezone.localtime(self.now)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self.today_start = midnight.astimezone(self.now.tzinfo)
        self.seconds_today = (local - midnight) / timedelta(seconds=1)

    @property
    def splits(self) -> int:
        return min(self.customers // SPLIT_EVERY, MAX_SPLITS)
