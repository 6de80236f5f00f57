"""The batch's quick checks and EventIn agree on every item: what the quick path accepts is
what EventIn accepts, in the same normalised form, and what it doubts EventIn judges."""

from datetime import timedelta

import pydantic
import pytest
from django.utils import timezone

from siyu.events import services
from siyu.events.schemas import EVENTS_WIRE, EventIn, Item
from siyu.events.services import events_validate


def slow(item: dict) -> Item | list[tuple[str, str]]:
    """What EventIn alone makes of an item: its Item, or its (field, reason) pairs."""
    try:
        return Item.of(EventIn.model_validate(item))
    except pydantic.ValidationError as exc:
        return [(".".join(map(str, e["loc"])) or "event", e["msg"]) for e in exc.errors()]


def as_tuple(item: Item) -> tuple:
    return tuple(getattr(item, name) for name in Item.__slots__)


NOW = timezone.now()
AT = NOW.isoformat()
CUSTOMERS = [
    {"phone": "13912345678"},
    {"phone": " 139 1234 5678 "},
    {"phone": "+86 139-1234-5678"},
    {"phone": "138****1234"},
    {"phone": "13912345678-123"},
    {"phone": ""},
    {"phone": None, "wechat_unionid": "oUnion"},
    {"phone": None},
    {},
    {"email": "Someone@Example.COM"},
    {"email": "not-an-address"},
    {"wechat_unionid": " oUnion "},
    {"wechat_unionid": "o Union"},
    {"wechat_unionid": "x" * 191},
    {"wechat_unionid": "x" * 192},
    {"phone": "13912345678", "wechat_unionid": "oU", "email": "a@example.com"},
    {"wechat_openid": "oOpen", "wechat_appid": "wxapp"},
    {"wechat_openid": "oOpen"},
    {"wechat_appid": "wxapp"},
    {"store_member_no": "M001", "tmall_buyer": "t1"},
    {"nickname": "x"},
]
OTHERS = [
    {},
    {"occurred_at": (NOW - timedelta(days=6 * 365)).isoformat()},
    {"occurred_at": (NOW + timedelta(days=2)).isoformat()},
    {"occurred_at": "2026-12-01T10:00:00"},
    {"occurred_at": "yesterday"},
    {"type": "has space"},
    {"type": ""},
    {"type": "t" * 61},
    {"source": "h5\x00"},
    {"source": "s" * 41},
    {"idempotency_key": ""},
    {"idempotency_key": "k\x07"},
    {"idempotency_key": None},
    {"properties": {"n": float("nan")}},
    {"properties": {"note": "NaN and Infinity as text"}},
    {"properties": {"s": "x" * 1001}},
    {"properties": {f"k{i}": i for i in range(51)}},
    {"properties": {"deep": [[[[[[[[[[[1]]]]]]]]]]]}},
    {"properties": {"nul": "a\x00b"}},
    {"properties": {"big": "y" * 900, "more": ["z" * 900] * 9}},
    {"properties": []},
    {"properties": None},
    {"extra": 1},
]


def well_shaped(item: dict) -> bool:
    try:
        EVENTS_WIRE.validate_python([item])
    except pydantic.ValidationError:
        return False
    return True


@pytest.mark.django_db
def test_the_quick_path_agrees_with_eventin_on_every_item(monkeypatch):
    quick = []

    def counted(*args):
        quick.append(answer := services_item_quick(*args))
        return answer

    services_item_quick = services.item_quick
    monkeypatch.setattr(services, "item_quick", counted)
    items = [{"customer": c, "type": "paid", "occurred_at": AT} for c in CUSTOMERS]
    items += [
        {"customer": {"phone": "13912345678"}, "type": "paid", "occurred_at": AT, **o}
        for o in OTHERS
    ]
    # the quick path runs for the items of a valid shape, in a batch with others or not
    shaped = [i for i in items if well_shaped(i)]
    assert len(items) > len(shaped) > len(items) // 2
    for batch in (items, shaped):
        valid, invalid = events_validate(batch)
        assert len(valid) + len(invalid) == len(batch)
        for index, item in valid.items():
            assert as_tuple(item) == as_tuple(slow(batch[index])), batch[index]
        for result in invalid:
            expected = slow(batch[result.index])
            assert [(e["field"], e["reason"]) for e in result.errors] == expected
    # the quick path vouched for most well-shaped items and doubted the rest
    assert len(quick) == 2 * len(shaped)
    assert len(quick) > sum(q is not None for q in quick) >= 20
