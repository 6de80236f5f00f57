"""The segment definition language: who a SOP, campaign or report is about.

A definition is JSON, compiled to one Django `Q` over `Customer`; tags, orders, events,
relationships and lifetime values become `EXISTS`/scalar subqueries, so a segment is one SQL
query. docs/segments.md explains every condition with examples.

Groups::

    {"all": [cond, ...]}   {"any": [cond, ...]}   {"not": cond}

Attribute leaves, ``{"attr": name, "op": op, "value": v}`` (`ATTRIBUTES` is the table)::

    gender, province, city, stage, rfm_group, first_channel (code), owner (staff id),
    store (store id), consent_sms, consent_email, is_super_user: eq / ne / in / is_set
    birthday_month (1-12): eq / in
    age (whole years at the as-of day): gte / lte / between
    rfm_r, rfm_f, rfm_m (1-5): eq / gte / lte / between
    rfm_monetary (CNY): gte / lte / between
    p_alive (0-1), clv_value (expected value in the next 365 days, CNY),
    clv_purchases_90, clv_purchases_365 (expected purchases): gte / lte / between;
        from the latest lifetime-value fit, a customer it did not score never matches
    first_seen, first_order, last_order: before / after (a "YYYY-MM-DD" day in the
        organisation's time zone, exclusive) / within_days (N: in the window below);
        a customer without paid orders has no first or last order and never matches

Other leaves::

    {"tags": {"any" | "all" | "none": [tag ids]}}
    {"orders": {...}}  paid orders, optionally only those paid in the last "within_days"
        days and/or with a line whose title contains "product"; then at most one of
        "count": {"gte"/"lte": n}, "amount": {"gte"/"lte": CNY} (net of refunds) or
        "none": true. With none of those three: at least one such order.
    {"events": {"type": t, ...}}  events of type t (required), optionally in the last
        "within_days" days and/or whose "properties" equal every given value (at most 10
        names; a string, number or boolean each, compared with their JSON type: 12 is not
        "12"); then "at_least": n (default 1) such events, or "none": true for no such event
    {"relationship": "active_friend" | "deleted_us"}

A **paid order** is the one RFM counts (segments/rfm.py, docs/rfm.md): status paid, shipped,
completed or partially refunded, not refunded in full, paid (or, with no paid time, placed)
no later than the as-of moment. Events after the as-of moment never count either.

`between` takes `[low, high]`, both inclusive; `in` a non-empty list. Windows are
`(as_of - N days, as_of]`: something exactly N days old is outside.

`vocabulary()` describes all of this for a form builder, from the same tables the validator
reads.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KeyTransform, compile_json_path
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Order, OrderItem
from siyu.core.errors import DomainError
from siyu.customers.models import Customer, Relationship
from siyu.customers.selectors import customers_visible_to
from siyu.events.models import Event
from siyu.org.selectors import Viewer
from siyu.segments.models import CustomerClv
from siyu.segments.rfm import PAID_STATUSES
from siyu.tags.models import CustomerTag

MAX_DEPTH = 10
MAX_CONDITIONS = 100
MAX_IDS = 100
MAX_DAYS = 36500
MAX_TEXT = 100
MAX_PROPERTIES = 10
MAX_TIMES = 1_000_000
MAX_MONEY = 10**12 - 1
MONEY = DecimalField(max_digits=16, decimal_places=2)

GROUPS = ("all", "any", "not")
RANGE_KEYS = ("gte", "lte")
# Property names become JSON paths; all-digit names would read as array indexes.
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")
EVENT_TYPE_NAME = re.compile(r"[-a-zA-Z0-9_]{1,60}")  # EventType.name is a slug


class SegmentError(DomainError):
    """A definition that cannot be compiled; the message names the JSON path and why."""


# ---------------------------------------------------------------------------- value kinds


@dataclass(frozen=True)
class Kind:
    """What one value must be: the check, the words for an error, the facts a form needs."""

    name: str  # choice, text, id, boolean, integer, number, date, true, scalar
    what: str
    test: Callable[[Any], bool]
    facts: tuple[tuple[str, Any], ...] = ()

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.name}
        for key, value in self.facts:
            if key == "choices":
                value = [{"value": v, "label": str(label)} for v, label in value]
            described[key] = value
        return described


def _names(options) -> str:
    return ", ".join(f'"{o}"' for o in options)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def _is_day(v: Any) -> bool:
    if not isinstance(v, str) or len(v) != 10:
        return False
    try:
        day = date.fromisoformat(v)
    except ValueError:
        return False
    return 1900 <= day.year <= 2999  # far days would overflow in time zone arithmetic


def choice(choices, what: str) -> Kind:
    allowed = {value for value, label in choices}
    return Kind(
        "choice", what, lambda v: isinstance(v, str) and v in allowed, (("choices", choices),)
    )


def integer(low: int, high: int, what: str = "") -> Kind:
    what = what or f"an integer from {low} to {high}"
    return Kind(
        "integer", what, lambda v: _is_int(v) and low <= v <= high, (("min", low), ("max", high))
    )


def number(low: float, high: float, what: str) -> Kind:
    return Kind(
        "number", what, lambda v: _is_number(v) and low <= v <= high, (("min", low), ("max", high))
    )


def text(what: str, *, of: str = "") -> Kind:
    facts = (("max_length", MAX_TEXT), *((("of", of),) if of else ()))
    return Kind("text", what, lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, facts)


def ident(of: str, what: str) -> Kind:
    # A row id fits a 64-bit integer column; a bigger one would fail in the database.
    return Kind("id", what, lambda v: _is_int(v) and 0 < v < 2**63, (("of", of),))


def _is_scalar(v: Any) -> bool:
    if isinstance(v, str):
        return len(v) <= MAX_TEXT
    return isinstance(v, bool) or (_is_number(v) and abs(v) <= 10**15)


BOOLEAN = Kind("boolean", "a boolean", lambda v: isinstance(v, bool))
DAY = Kind("date", 'a date "YYYY-MM-DD" from 1900 to 2999', _is_day)
TRUE = Kind("true", "true", lambda v: v is True)
DAYS = integer(1, MAX_DAYS)
COUNT = integer(0, 10**9, "a non-negative integer")
CNY = number(0, MAX_MONEY, "a non-negative number")
PRODUCT = Kind(
    "text",
    f"a non-empty string of at most {MAX_TEXT} characters",
    lambda v: isinstance(v, str) and bool(v.strip()) and len(v) <= MAX_TEXT,
    (("max_length", MAX_TEXT),),
)
EVENT_TYPE = Kind(
    "text",
    "an event type name (letters, digits, - and _)",
    lambda v: isinstance(v, str) and bool(EVENT_TYPE_NAME.fullmatch(v)),
    (("max_length", 60), ("of", "event_type")),
)
PROPERTY_VALUE = Kind(
    "scalar", f"a string of at most {MAX_TEXT} characters, a number or a boolean", _is_scalar
)
TAG_ID = ident("tag", "a positive integer tag id")


# ---------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Op:
    label: str
    shape: str  # one value, a "list" (in), a "pair" (between)
    kind: Kind | None = None  # the value's kind when the op fixes it, whatever the attribute


OPS: dict[str, Op] = {
    "eq": Op(_("is"), "one"),
    "ne": Op(_("is not"), "one"),
    "in": Op(_("is one of"), "list"),
    "is_set": Op(_("is known"), "one", BOOLEAN),
    "gte": Op(_("at least"), "one"),
    "lte": Op(_("at most"), "one"),
    "between": Op(_("between"), "pair"),
    "before": Op(_("before"), "one"),
    "after": Op(_("after"), "one"),
    "within_days": Op(_("in the last N days"), "one", DAYS),
}
CATEGORICAL = ("eq", "ne", "in", "is_set")
SCORE = ("eq", "gte", "lte", "between")
THRESHOLD = ("gte", "lte", "between")
MOMENT = ("before", "after", "within_days")

# compile(op, value, as_of) -> Q over Customer
Compiler = Callable[[str, Any, datetime], Q]


@dataclass(frozen=True)
class Attribute:
    label: str
    ops: tuple[str, ...]
    value: Kind
    compile: Compiler


def _categorical(path: str, unset: str = "null") -> Compiler:
    """eq / ne / in / is_set on a column; unset is "blank" (the empty string) or "null"."""

    def compile(op: str, value: Any, as_of: datetime) -> Q:
        if op == "is_set":
            is_set = (
                Q(**{f"{path.split('__')[0]}__isnull": False})
                if unset == "null"
                else ~Q(**{path: ""})
            )
            return is_set if value else ~is_set
        if op == "in":
            return Q(**{f"{path}__in": value})
        if op == "ne":
            return ~Q(**{path: value})
        return Q(**{path: value})

    return compile


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _ordered(path: str, convert: Callable[[Any], Any] = int) -> Compiler:
    """eq / gte / lte / between on a column."""

    def compile(op: str, value: Any, as_of: datetime) -> Q:
        if op == "between":
            return Q(**{f"{path}__gte": convert(value[0]), f"{path}__lte": convert(value[1])})
        lookup = {"eq": "exact", "gte": "gte", "lte": "lte"}[op]
        return Q(**{f"{path}__{lookup}": convert(value)})

    return compile


def _clv(field: str, convert: Callable[[Any], Any]) -> Compiler:
    """gte / lte / between on the customer's CustomerClv row, through EXISTS.

    Not a join across the `clv` relation: under nested any/not Django may make that join
    INNER, dropping customers without a row from conditions that do not mention CLV.
    """
    threshold = _ordered(field, convert)

    def compile(op: str, value: Any, as_of: datetime) -> Q:
        rows = CustomerClv.objects.filter(threshold(op, value, as_of), customer=OuterRef("pk"))
        return Q(Exists(rows))

    return compile


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _age(op: str, value: Any, as_of: datetime) -> Q:
    today = timezone.localdate(as_of)
    low = value if op == "gte" else value[0] if op == "between" else None
    high = value if op == "lte" else value[1] if op == "between" else None
    q = Q(birthday__isnull=False)
    if low is not None:  # at least `low` years old: born on or before this day
        q &= Q(birthday__lte=_years_before(today, low))
    if high is not None:  # younger than `high + 1`
        q &= Q(birthday__gt=_years_before(today, high + 1))
    return q


def _first_seen(op: str, value: Any, as_of: datetime) -> Q:
    if op == "within_days":
        since = as_of - timedelta(days=value)
        return Q(first_seen_at__gt=since, first_seen_at__lte=as_of)
    day = date.fromisoformat(value)
    return Q(first_seen_at__date__lt=day) if op == "before" else Q(first_seen_at__date__gt=day)


def _midnight(day: date) -> datetime:
    """The start of `day` in the organisation's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def paid_orders(as_of: datetime) -> QuerySet[Order]:
    """The outer customer's paid orders, as RFM counts them, with their `paid_time`."""
    return (
        Order.objects.alias(paid_time=Coalesce("paid_at", "placed_at"))
        .filter(customer=OuterRef("pk"), status__in=PAID_STATUSES, paid_time__lte=as_of)
        .filter(Q(refund_amount=0) | Q(refund_amount__lt=F("amount")))
    )


def _order_moment(first: bool) -> Compiler:
    """first_order / last_order: the earliest / latest paid time, compared through EXISTS.

    The first order lies before a moment when any order does; the last order after it when
    any does; the other two cases need an order and none on the far side. EXISTS keeps a
    customer without orders out of both a condition and its negation's opposite (a NULL
    from MIN/MAX would drop them from `not` too).
    """

    def compile(op: str, value: Any, as_of: datetime) -> Q:
        if op == "within_days":
            edge = as_of - timedelta(days=value)
            early, inside = False, Q(paid_time__gt=edge)
            outside = Q(paid_time__lte=edge)
        elif op == "before":
            start = _midnight(date.fromisoformat(value))
            early, inside, outside = True, Q(paid_time__lt=start), Q(paid_time__gte=start)
        else:  # after the day: from the next midnight on
            start = _midnight(date.fromisoformat(value) + timedelta(days=1))
            early, inside, outside = False, Q(paid_time__gte=start), Q(paid_time__lt=start)
        orders = paid_orders(as_of)
        if early == first:
            return Q(Exists(orders.filter(inside)))
        return Q(Exists(orders)) & ~Q(Exists(orders.filter(outside)))

    return compile


ATTRIBUTES: dict[str, Attribute] = {
    "gender": Attribute(
        _("gender"),
        CATEGORICAL,
        choice(Customer.Gender.choices, "a gender code"),
        _categorical("gender", "blank"),
    ),
    "age": Attribute(_("age"), THRESHOLD, integer(0, 150), _age),
    "birthday_month": Attribute(
        _("birthday month"), ("eq", "in"), integer(1, 12), _categorical("birthday__month")
    ),
    "province": Attribute(
        _("province"), CATEGORICAL, text("a string"), _categorical("province", "blank")
    ),
    "city": Attribute(_("city"), CATEGORICAL, text("a string"), _categorical("city", "blank")),
    "first_channel": Attribute(
        _("source channel"),
        CATEGORICAL,
        text("a channel code", of="channel"),
        _categorical("first_channel__code"),
    ),
    "owner": Attribute(
        _("owner"), CATEGORICAL, ident("staff", "a staff id"), _categorical("owner_id")
    ),
    "store": Attribute(
        _("store"), CATEGORICAL, ident("store", "a store id"), _categorical("store_id")
    ),
    "first_seen": Attribute(_("first seen"), MOMENT, DAY, _first_seen),
    "first_order": Attribute(_("first paid order"), MOMENT, DAY, _order_moment(first=True)),
    "last_order": Attribute(_("last paid order"), MOMENT, DAY, _order_moment(first=False)),
    "stage": Attribute(
        _("lifecycle stage"),
        CATEGORICAL,
        choice(Customer.Stage.choices, "a lifecycle stage"),
        _categorical("stage", "blank"),
    ),
    "rfm_group": Attribute(
        _("RFM group"),
        CATEGORICAL,
        choice(Customer.RfmGroup.choices, "an RFM group"),
        _categorical("rfm_group", "blank"),
    ),
    "rfm_r": Attribute(_("R score"), SCORE, integer(1, 5), _ordered("rfm_r")),
    "rfm_f": Attribute(_("F score"), SCORE, integer(1, 5), _ordered("rfm_f")),
    "rfm_m": Attribute(_("M score"), SCORE, integer(1, 5), _ordered("rfm_m")),
    "rfm_monetary": Attribute(
        _("paid amount in the RFM window"), THRESHOLD, CNY, _ordered("rfm_monetary", _decimal)
    ),
    "is_super_user": Attribute(
        _("super user"), CATEGORICAL, BOOLEAN, _categorical("is_super_user")
    ),
    "p_alive": Attribute(
        _("P(alive)"),
        THRESHOLD,
        number(0, 1, "a number from 0 to 1"),
        _clv("p_alive", float),
    ),
    "clv_value": Attribute(
        _("expected value, next 365 days"), THRESHOLD, CNY, _clv("value_365", _decimal)
    ),
    "clv_purchases_90": Attribute(
        _("expected purchases, next 90 days"),
        THRESHOLD,
        number(0, MAX_TIMES, "a non-negative number"),
        _clv("purchases_90", float),
    ),
    "clv_purchases_365": Attribute(
        _("expected purchases, next 365 days"),
        THRESHOLD,
        number(0, MAX_TIMES, "a non-negative number"),
        _clv("purchases_365", float),
    ),
    "consent_sms": Attribute(_("SMS consent"), CATEGORICAL, BOOLEAN, _categorical("consent_sms")),
    "consent_email": Attribute(
        _("e-mail consent"), CATEGORICAL, BOOLEAN, _categorical("consent_email")
    ),
}


@dataclass(frozen=True)
class Key:
    label: str
    value: Kind
    shape: str = "one"  # one value, a "range" {"gte", "lte"}, or "properties" {name: value}


@dataclass(frozen=True)
class Leaf:
    """A leaf that is an object of optional keys, like {"orders": {...}}."""

    label: str
    keys: dict[str, Key]
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # at most one of these
    default: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        keys = []
        for name, key in self.keys.items():
            entry = {"name": name, "label": str(key.label), "shape": key.shape}
            entry["value"] = key.value.describe()
            if name in self.default:
                entry["default"] = self.default[name]
            keys.append(entry)
        return {
            "label": str(self.label),
            "keys": keys,
            "required": list(self.required),
            "one_of": list(self.one_of),
        }


ORDERS = Leaf(
    _("paid orders"),
    {
        "within_days": Key(_("paid in the last N days"), DAYS),
        "product": Key(_("a line's product title contains"), PRODUCT),
        "count": Key(_("number of orders"), COUNT, "range"),
        "amount": Key(_("amount net of refunds (CNY)"), CNY, "range"),
        "none": Key(_("no such order"), TRUE),
    },
    one_of=("count", "amount", "none"),
)
EVENTS = Leaf(
    _("behaviour events"),
    {
        "type": Key(_("event type"), EVENT_TYPE),
        "within_days": Key(_("in the last N days"), DAYS),
        "properties": Key(_("properties equal"), PROPERTY_VALUE, "properties"),
        "at_least": Key(_("at least N times"), integer(1, MAX_TIMES)),
        "none": Key(_("no such event"), TRUE),
    },
    required=("type",),
    one_of=("at_least", "none"),
    default={"at_least": 1},
)
TAG_MODES = (("any", _("has any of")), ("all", _("has all of")), ("none", _("has none of")))
RELATIONSHIPS = (
    ("active_friend", _("is an active WeCom friend of a staff member")),
    ("deleted_us", _("deleted a staff member")),
)
RELATIONSHIP = choice(RELATIONSHIPS, f"one of {_names(v for v, label in RELATIONSHIPS)}")
LEAVES = ("attr", "tags", "orders", "events", "relationship")


# ---------------------------------------------------------------------------- validation


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _fail(path: str, why: str) -> None:
    raise SegmentError(f"{path or 'definition'}: {why}", field="definition")


def _only_keys(node: dict, path: str, allowed) -> None:
    for key in node:
        if key not in allowed:
            _fail(path, f'unknown key "{key}"')


def _check_range(value: Any, path: str, kind: Kind) -> None:
    if not isinstance(value, dict) or not value:
        _fail(path, 'must be an object with "gte" and/or "lte"')
    _only_keys(value, path, RANGE_KEYS)
    for key, bound in value.items():
        if not kind.test(bound):
            _fail(path, f'"{key}" must be {kind.what}')
    if "gte" in value and "lte" in value and value["gte"] > value["lte"]:
        _fail(path, '"gte" must not exceed "lte"')


def _check_value(value: Any, path: str, shape: str, kind: Kind) -> None:
    if shape == "list":
        if not isinstance(value, list) or not value:
            _fail(path, "must be a non-empty list")
        if len(value) > MAX_IDS:
            _fail(path, f"must have at most {MAX_IDS} items")
        for i, item in enumerate(value):
            if not kind.test(item):
                _fail(_at(path, i), f"must be {kind.what}")
    elif shape == "pair":
        if not (isinstance(value, list) and len(value) == 2 and all(map(kind.test, value))):
            _fail(path, f"must be [low, high], each {kind.what}")
        if value[0] > value[1]:
            _fail(path, "low must not exceed high")
    elif not kind.test(value):
        _fail(path, f"must be {kind.what}")


def _check_attr(node: dict, path: str) -> None:
    _only_keys(node, path, ("attr", "op", "value"))
    name, op = node.get("attr"), node.get("op")
    attribute = ATTRIBUTES.get(name) if isinstance(name, str) else None
    if attribute is None:
        _fail(_at(path, "attr"), f"unknown attribute {name!r}; one of {_names(ATTRIBUTES)}")
    if "op" not in node:
        _fail(path, 'missing "op"')
    if "value" not in node:
        _fail(path, 'missing "value"')
    if op not in attribute.ops:
        _fail(_at(path, "op"), f'unknown op {op!r} for "{name}"; one of {_names(attribute.ops)}')
    spec = OPS[op]
    _check_value(node["value"], _at(path, "value"), spec.shape, spec.kind or attribute.value)


def _check_properties(value: Any, path: str, kind: Kind) -> None:
    if not isinstance(value, dict) or not value:
        _fail(path, "must be a non-empty object of property names and values")
    if len(value) > MAX_PROPERTIES:
        _fail(path, f"must have at most {MAX_PROPERTIES} properties")
    for name, wanted in value.items():
        if not (isinstance(name, str) and PROPERTY_NAME.fullmatch(name)):
            _fail(
                _at(path, name),
                "a property name has at most 60 letters, digits or _, not starting with a digit",
            )
        if not kind.test(wanted):
            _fail(_at(path, name), f"must be {kind.what}")


def _check_leaf(spec: Any, path: str, leaf: Leaf) -> None:
    if not isinstance(spec, dict) or not spec:
        _fail(path, "must be a non-empty object")
    _only_keys(spec, path, leaf.keys)
    for key in leaf.required:
        if key not in spec:
            _fail(path, f'missing "{key}"')
    if sum(key in spec for key in leaf.one_of) > 1:
        _fail(path, f"use only one of {_names(leaf.one_of)}")
    for name, value in spec.items():
        key, kpath = leaf.keys[name], _at(path, name)
        if key.shape == "range":
            _check_range(value, kpath, key.value)
        elif key.shape == "properties":
            _check_properties(value, kpath, key.value)
        else:
            _check_value(value, kpath, "one", key.value)


def _check_tags(spec: Any, path: str) -> None:
    modes = [mode for mode, label in TAG_MODES]
    if not isinstance(spec, dict) or len(spec) != 1:
        _fail(path, f"must be an object with exactly one of {_names(modes)}")
    _only_keys(spec, path, modes)
    ((mode, ids),) = spec.items()
    ipath = _at(path, mode)
    if not isinstance(ids, list) or not ids:
        _fail(ipath, "must be a non-empty list of tag ids")
    if len(ids) > MAX_IDS:
        _fail(ipath, f"must have at most {MAX_IDS} tag ids")
    for i, tag_id in enumerate(ids):
        if not TAG_ID.test(tag_id):
            _fail(_at(ipath, i), f"must be {TAG_ID.what}")


def _check(node: Any, path: str, depth: int, budget: list[int]) -> None:
    if not isinstance(node, dict):
        _fail(path, "must be an object")
    kinds = [key for key in (*GROUPS, *LEAVES) if key in node]
    if not kinds:
        _fail(path, f"must have one of {_names((*GROUPS, *LEAVES))}")
    if len(kinds) > 1:
        _fail(path, f"must have only one of {_names(kinds)}")
    kind = kinds[0]
    if kind in GROUPS:
        if depth >= MAX_DEPTH:
            _fail(path, f"nested deeper than {MAX_DEPTH} levels")
        _only_keys(node, path, (kind,))
        children, cpath = node[kind], _at(path, kind)
        if kind == "not":
            _check(children, cpath, depth + 1, budget)
            return
        if not isinstance(children, list) or not children:
            _fail(cpath, "must be a non-empty list of conditions")
        for i, child in enumerate(children):
            _check(child, _at(cpath, i), depth + 1, budget)
        return
    budget[0] += 1
    if budget[0] > MAX_CONDITIONS:
        _fail(path, f"more than {MAX_CONDITIONS} conditions")
    if kind == "attr":
        _check_attr(node, path)
        return
    _only_keys(node, path, (kind,))
    if kind == "tags":
        _check_tags(node["tags"], _at(path, "tags"))
    elif kind == "orders":
        _check_leaf(node["orders"], _at(path, "orders"), ORDERS)
    elif kind == "events":
        _check_leaf(node["events"], _at(path, "events"), EVENTS)
    elif not RELATIONSHIP.test(node["relationship"]):
        _fail(_at(path, "relationship"), f"must be {RELATIONSHIP.what}")


def validate_definition(definition: Any) -> None:
    """Check a definition; raises SegmentError naming the JSON path of the first bad part."""
    _check(definition, "", 0, [0])


def vocabulary() -> dict[str, Any]:
    """The language as data, for a form that builds definitions; labels in the active language.

    Read from the tables the validator uses, so a form built from it offers exactly what
    `validate_definition` accepts. An op's value has the op's "shape": one value, a "list"
    (for in) or a "pair" [low, high] (for between), each of the op's kind if it names one,
    else the attribute's.
    """
    return {
        "groups": list(GROUPS),
        "ops": {
            name: {
                "label": str(op.label),
                "shape": op.shape,
                **({"value": op.kind.describe()} if op.kind else {}),
            }
            for name, op in OPS.items()
        },
        "attributes": [
            {
                "name": name,
                "label": str(attribute.label),
                "ops": list(attribute.ops),
                "value": attribute.value.describe(),
            }
            for name, attribute in ATTRIBUTES.items()
        ],
        "leaves": {
            "tags": {
                "label": str(_("tags")),
                "modes": [{"value": mode, "label": str(label)} for mode, label in TAG_MODES],
                "value": TAG_ID.describe(),
                "max_items": MAX_IDS,
            },
            "orders": ORDERS.describe(),
            "events": EVENTS.describe() | {"max_properties": MAX_PROPERTIES},
            "relationship": {
                "label": str(_("WeCom relationship")),
                "value": RELATIONSHIP.describe(),
            },
        },
        "limits": {
            "depth": MAX_DEPTH,
            "conditions": MAX_CONDITIONS,
            "list_items": MAX_IDS,
            "days": MAX_DAYS,
        },
    }


# ---------------------------------------------------------------------------- compiling


def _compile_tags(spec: dict) -> Q:
    ((mode, ids),) = spec.items()
    ids = sorted(set(ids))

    def having(tag_ids: list[int]) -> Exists:
        links = CustomerTag.objects.filter(customer=OuterRef("pk"), tag_id__in=tag_ids)
        return Exists(links)

    if mode == "any":
        return Q(having(ids))
    if mode == "none":
        return ~Q(having(ids))
    q = Q()
    for tag_id in ids:
        q &= Q(having([tag_id]))
    return q


def _range(expression, bounds: dict, convert) -> Q:
    q = Q()
    if "gte" in bounds:
        q &= Q(GreaterThanOrEqual(expression, Value(convert(bounds["gte"]))))
    if "lte" in bounds:
        q &= Q(LessThanOrEqual(expression, Value(convert(bounds["lte"]))))
    return q


def _compile_orders(spec: dict, as_of: datetime) -> Q:
    orders = paid_orders(as_of)
    if "within_days" in spec:
        orders = orders.filter(paid_time__gt=as_of - timedelta(days=spec["within_days"]))
    if "product" in spec:
        lines = OrderItem.objects.filter(order=OuterRef("pk"), title__icontains=spec["product"])
        orders = orders.filter(Exists(lines))
    if "count" in spec:
        counted = orders.order_by().values("customer").annotate(n=Count("pk")).values("n")
        total = Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
        return _range(total, spec["count"], int)
    if "amount" in spec:
        net = Sum(F("amount") - F("refund_amount"), output_field=MONEY)
        summed = orders.order_by().values("customer").annotate(net=net).values("net")
        total = Coalesce(
            Subquery(summed, output_field=MONEY), Value(Decimal(0)), output_field=MONEY
        )
        return _range(total, spec["amount"], _decimal)
    if spec.get("none"):
        return ~Q(Exists(orders))
    return Q(Exists(orders))


def json_kind(value: Any) -> str:
    """The JSON type of a property value as PostgreSQL's jsonb_typeof names it."""
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


class HasJsonKind(Func):
    """properties[key] holds a JSON value of a kind: "string", "number" or "boolean".

    SQLite's key lookups compare extracted SQL values, so there the string "true" equals
    true; the type check tells them apart. jsonb equality already does on PostgreSQL.
    """

    output_field = BooleanField()
    SQLITE_TYPES = {"string": "'text'", "number": "'integer', 'real'", "boolean": "'true', 'false'"}

    def __init__(self, key: str, kind: str) -> None:
        super().__init__(F("properties"))
        self.key, self.kind = key, kind

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = compile_json_path([self.key])
        return f"JSON_TYPE({column}, %s) IN ({self.SQLITE_TYPES[self.kind]})", (*params, path)

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"jsonb_typeof({column} -> %s) = %s", (*params, self.key, self.kind)


def _compile_events(spec: dict, as_of: datetime) -> Q:
    events = Event.objects.filter(
        customer=OuterRef("pk"), type=spec["type"], occurred_at__lte=as_of
    )
    if "within_days" in spec:
        events = events.filter(occurred_at__gt=as_of - timedelta(days=spec["within_days"]))
    for i, (key, wanted) in enumerate(sorted(spec.get("properties", {}).items())):
        # An alias, not properties__<key>=…: a key named like a lookup ("in") stays a key.
        alias = f"property_{i}"
        events = events.alias(**{alias: KeyTransform(key, "properties")}).filter(
            Q(**{alias: wanted}), HasJsonKind(key, json_kind(wanted))
        )
    if spec.get("none"):
        return ~Q(Exists(events))
    times = spec.get("at_least", 1)
    # EXISTS(… LIMIT 1 OFFSET n - 1): true once an n-th event is found, without counting all.
    return Q(Exists(events.order_by()[times - 1 : times]))


def _compile_relationship(kind: str) -> Q:
    friends = Relationship.objects.filter(customer=OuterRef("pk"))
    if kind == "active_friend":
        friends = friends.filter(status=Relationship.Status.ACTIVE)
    else:
        friends = friends.filter(removed_by=Relationship.RemovedBy.CUSTOMER)
    return Q(Exists(friends))


def _compile(node: dict, as_of: datetime) -> Q:
    if "all" in node:
        q = Q()
        for child in node["all"]:
            q &= _compile(child, as_of)
        return q
    if "any" in node:
        q = _compile(node["any"][0], as_of)
        for child in node["any"][1:]:
            q |= _compile(child, as_of)
        return q
    if "not" in node:
        return ~_compile(node["not"], as_of)
    if "attr" in node:
        return ATTRIBUTES[node["attr"]].compile(node["op"], node["value"], as_of)
    if "tags" in node:
        return _compile_tags(node["tags"])
    if "orders" in node:
        return _compile_orders(node["orders"], as_of)
    if "events" in node:
        return _compile_events(node["events"], as_of)
    return _compile_relationship(node["relationship"])


def compile_definition(definition: Any, *, as_of: datetime | None = None) -> Q:
    """A Q over Customer selecting the definition's members; raises SegmentError if invalid."""
    validate_definition(definition)
    return _compile(definition, as_of or timezone.now())


def segment_members(
    definition: Any, viewer: Viewer, as_of: datetime | None = None
) -> QuerySet[Customer]:
    """The live customers in the viewer's scope who match; raises SegmentError if invalid."""
    return customers_visible_to(viewer).filter(compile_definition(definition, as_of=as_of))


def segment_count(definition: Any, viewer: Viewer, as_of: datetime | None = None) -> int:
    """How many customers `segment_members` selects; raises SegmentError if invalid."""
    return segment_members(definition, viewer, as_of).count()
