"""The segment definition language: who a SOP, campaign or report is about.

A definition is JSON, compiled to one Django `Q` over `Customer`; tags, orders and
relationships become `EXISTS`/scalar subqueries, so a segment is one SQL query.

Groups::

    {"all": [cond, ...]}   {"any": [cond, ...]}   {"not": cond}

Leaves::

    {"attr": "gender", "op": "eq", "value": "f"}
        gender, province, city, stage, rfm_group, first_channel (code), owner (staff id),
        store (store id), consent_sms, consent_email, is_super_user: eq / ne / in / is_set
        age (years at the as-of date): gte / lte / between
        first_seen: before / after (a "YYYY-MM-DD" day, exclusive) / within_days
        rfm_r, rfm_f, rfm_m (1-5): eq / gte / lte / between;  rfm_monetary: gte / lte
    {"tags": {"any" | "all" | "none": [tag ids]}}
    {"orders": {...}}  paid orders (`PAID_STATUSES`), optionally only those paid in the last
        "within_days" days and/or with a line whose title contains "product"; then at most one
        of "count": {"gte"/"lte": n}, "amount": {"gte"/"lte": CNY} (net of refunds) or
        "none": true. With none of those three: at least one such order.
    {"relationship": "active_friend" | "deleted_us"}

`between` takes `[low, high]`, both inclusive. Windows are `(as_of - N days, as_of]`.
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem
from siyu.core.errors import DomainError
from siyu.customers.models import Customer, Relationship
from siyu.customers.selectors import customers_visible_to
from siyu.org.selectors import Viewer
from siyu.segments.rfm import PAID_STATUSES
from siyu.tags.models import CustomerTag

MAX_DEPTH = 10
MAX_CONDITIONS = 100
MAX_IDS = 100
MAX_DAYS = 36500
MAX_TEXT = 100

GROUPS = ("all", "any", "not")
LEAVES = ("attr", "tags", "orders", "relationship")
RELATIONSHIPS = ("active_friend", "deleted_us")
TAG_MODES = ("any", "all", "none")
ORDER_KEYS = ("within_days", "product", "count", "amount", "none")
ORDER_MEASURES = ("count", "amount", "none")
RANGE_KEYS = ("gte", "lte")
MONEY = DecimalField(max_digits=16, decimal_places=2)


class SegmentError(DomainError):
    """A definition that cannot be compiled; the message names the JSON path and why."""


# ---------------------------------------------------------------------------- attributes


def _choice(choices) -> Callable[[Any], bool]:
    allowed = {value for value, _ in choices}
    return lambda v: isinstance(v, str) and v in allowed


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT


def _id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _int_between(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _money(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 10**12


# name -> (field lookup, value check, what the value must be, "set" means)
# "set" is "blank" (not the empty string) or "null" (not NULL).
CATEGORICAL: dict[str, tuple[str, Callable[[Any], bool], str, str]] = {
    "gender": ("gender", _choice(Customer.Gender.choices), "a gender code", "blank"),
    "province": ("province", _text, "a string", "blank"),
    "city": ("city", _text, "a string", "blank"),
    "stage": ("stage", _choice(Customer.Stage.choices), "a lifecycle stage", "blank"),
    "rfm_group": ("rfm_group", _choice(Customer.RfmGroup.choices), "an RFM group", "blank"),
    "first_channel": ("first_channel__code", _text, "a channel code", "null"),
    "owner": ("owner_id", _id, "a staff id", "null"),
    "store": ("store_id", _id, "a store id", "null"),
    "consent_sms": ("consent_sms", _bool, "a boolean", "null"),
    "consent_email": ("consent_email", _bool, "a boolean", "null"),
    "is_super_user": ("is_super_user", _bool, "a boolean", "null"),
}
CATEGORICAL_OPS = ("eq", "ne", "in", "is_set")
SCORES = ("rfm_r", "rfm_f", "rfm_m")
SCORE_OPS = ("eq", "gte", "lte", "between")
AGE_OPS = ("gte", "lte", "between")
FIRST_SEEN_OPS = ("before", "after", "within_days")
MONETARY_OPS = ("gte", "lte")
ATTRIBUTES = (*CATEGORICAL, "age", "first_seen", *SCORES, "rfm_monetary")


# ---------------------------------------------------------------------------- validation


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _fail(path: str, why: str) -> None:
    raise SegmentError(f"{path or 'definition'}: {why}", field="definition")


def _only_keys(node: dict, path: str, allowed: tuple[str, ...]) -> None:
    for key in node:
        if key not in allowed:
            _fail(path, f'unknown key "{key}"')


def _names(options) -> str:
    return ", ".join(f'"{o}"' for o in options)


def _check_range(value: Any, path: str, check: Callable[[Any], bool], what: str) -> None:
    if not isinstance(value, dict) or not value:
        _fail(path, 'must be an object with "gte" and/or "lte"')
    _only_keys(value, path, RANGE_KEYS)
    for key, bound in value.items():
        if not check(bound):
            _fail(path, f'"{key}" must be {what}')
    if "gte" in value and "lte" in value and value["gte"] > value["lte"]:
        _fail(path, '"gte" must not exceed "lte"')


def _check_pair(value: Any, path: str, check: Callable[[Any], bool], what: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(check(v) for v in value)):
        _fail(path, f"must be [low, high], each {what}")
    if value[0] > value[1]:
        _fail(path, "low must not exceed high")


def _check_attr(node: dict, path: str) -> None:
    _only_keys(node, path, ("attr", "op", "value"))
    name, op = node.get("attr"), node.get("op")
    if name not in ATTRIBUTES:
        _fail(_at(path, "attr"), f"unknown attribute {name!r}; one of {_names(ATTRIBUTES)}")
    if "op" not in node:
        _fail(path, 'missing "op"')
    if "value" not in node:
        _fail(path, 'missing "value"')
    value, vpath = node["value"], _at(path, "value")
    if name in CATEGORICAL:
        _, check, what, _ = CATEGORICAL[name]
        ops = CATEGORICAL_OPS
    elif name in SCORES:
        check, what, ops = _int_between(1, 5), "an integer from 1 to 5", SCORE_OPS
    elif name == "age":
        check, what, ops = _int_between(0, 150), "an integer from 0 to 150", AGE_OPS
    elif name == "rfm_monetary":
        check, what, ops = _money, "a non-negative number", MONETARY_OPS
    else:  # first_seen
        ops = FIRST_SEEN_OPS
        check, what = (
            (_int_between(1, MAX_DAYS), f"an integer from 1 to {MAX_DAYS}")
            if op == "within_days"
            else (_day, 'a date "YYYY-MM-DD"')
        )
    if op not in ops:
        _fail(_at(path, "op"), f'unknown op {op!r} for "{name}"; one of {_names(ops)}')
    if op == "is_set":
        if not isinstance(value, bool):
            _fail(vpath, "must be a boolean")
    elif op == "in":
        if not isinstance(value, list) or not value:
            _fail(vpath, "must be a non-empty list")
        if len(value) > MAX_IDS:
            _fail(vpath, f"must have at most {MAX_IDS} items")
        for i, item in enumerate(value):
            if not check(item):
                _fail(_at(vpath, i), f"must be {what}")
    elif op == "between":
        _check_pair(value, vpath, check, what)
    elif not check(value):
        _fail(vpath, f"must be {what}")


def _day(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _check_tags(spec: Any, path: str) -> None:
    if not isinstance(spec, dict) or len(spec) != 1:
        _fail(path, f"must be an object with exactly one of {_names(TAG_MODES)}")
    _only_keys(spec, path, TAG_MODES)
    ((mode, ids),) = spec.items()
    ipath = _at(path, mode)
    if not isinstance(ids, list) or not ids:
        _fail(ipath, "must be a non-empty list of tag ids")
    if len(ids) > MAX_IDS:
        _fail(ipath, f"must have at most {MAX_IDS} tag ids")
    for i, tag_id in enumerate(ids):
        if not _id(tag_id):
            _fail(_at(ipath, i), "must be a positive integer tag id")


def _check_orders(spec: Any, path: str) -> None:
    if not isinstance(spec, dict) or not spec:
        _fail(path, "must be a non-empty object")
    _only_keys(spec, path, ORDER_KEYS)
    measures = [key for key in ORDER_MEASURES if key in spec]
    if len(measures) > 1:
        _fail(path, f"use only one of {_names(ORDER_MEASURES)}")
    if "within_days" in spec and not _int_between(1, MAX_DAYS)(spec["within_days"]):
        _fail(_at(path, "within_days"), f"must be an integer from 1 to {MAX_DAYS}")
    if "product" in spec:
        product = spec["product"]
        if not isinstance(product, str) or not product.strip() or len(product) > MAX_TEXT:
            _fail(_at(path, "product"), f"must be a non-empty string of at most {MAX_TEXT}")
    if "count" in spec:
        count_ok = _int_between(0, 10**9)
        _check_range(spec["count"], _at(path, "count"), count_ok, "a non-negative integer")
    if "amount" in spec:
        _check_range(spec["amount"], _at(path, "amount"), _money, "a non-negative number")
    if "none" in spec and spec["none"] is not True:
        _fail(_at(path, "none"), "must be true")


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
        _check_orders(node["orders"], _at(path, "orders"))
    elif node["relationship"] not in RELATIONSHIPS:
        _fail(_at(path, "relationship"), f"must be one of {_names(RELATIONSHIPS)}")


def validate_definition(definition: Any) -> None:
    """Check a definition; raises SegmentError naming the JSON path of the first bad part."""
    _check(definition, "", 0, [0])


# ---------------------------------------------------------------------------- compiling


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _categorical(name: str, op: str, value: Any) -> Q:
    field, _, _, unset = CATEGORICAL[name]
    if op == "is_set":
        is_set = (
            Q(**{f"{field.split('__')[0]}__isnull": False})
            if unset == "null"
            else ~Q(**{field: ""})
        )
        return is_set if value else ~is_set
    if op == "in":
        return Q(**{f"{field}__in": value})
    if op == "ne":
        return ~Q(**{field: value})
    return Q(**{field: value})


def _compile_attr(node: dict, as_of: datetime) -> Q:
    name, op, value = node["attr"], node["op"], node["value"]
    if name in CATEGORICAL:
        return _categorical(name, op, value)
    if name == "age":
        today = timezone.localdate(as_of)
        low = value if op == "gte" else value[0] if op == "between" else None
        high = value if op == "lte" else value[1] if op == "between" else None
        q = Q(birthday__isnull=False)
        if low is not None:  # at least `low` years old: born on or before this day
            q &= Q(birthday__lte=_years_before(today, low))
        if high is not None:  # younger than `high + 1`
            q &= Q(birthday__gt=_years_before(today, high + 1))
        return q
    if name == "first_seen":
        if op == "within_days":
            since = as_of - timedelta(days=value)
            return Q(first_seen_at__gt=since, first_seen_at__lte=as_of)
        day = date.fromisoformat(value)
        return Q(first_seen_at__date__lt=day) if op == "before" else Q(first_seen_at__date__gt=day)
    field = "rfm_monetary" if name == "rfm_monetary" else name
    if name == "rfm_monetary":
        value = Decimal(str(value))
    if op == "between":
        return Q(**{f"{field}__gte": value[0], f"{field}__lte": value[1]})
    lookup = {"eq": "exact", "gte": "gte", "lte": "lte"}[op]
    return Q(**{f"{field}__{lookup}": value})


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
    orders = Order.objects.filter(customer=OuterRef("pk"), status__in=PAID_STATUSES)
    if "within_days" in spec:
        since = as_of - timedelta(days=spec["within_days"])
        orders = orders.filter(paid_at__gt=since, paid_at__lte=as_of)
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
        return _range(total, spec["amount"], lambda v: Decimal(str(v)))
    if spec.get("none"):
        return ~Q(Exists(orders))
    return Q(Exists(orders))


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
        return _compile_attr(node, as_of)
    if "tags" in node:
        return _compile_tags(node["tags"])
    if "orders" in node:
        return _compile_orders(node["orders"], as_of)
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
