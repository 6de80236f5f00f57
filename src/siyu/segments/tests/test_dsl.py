"""The segment language: examples per condition, validation paths, scope, and a property test.

The property test checks the SQL compiler against `evaluate_in_python`, a plain evaluator
written from the language's description, on random data and random definitions.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from siyu.commerce.models import Order, OrderItem
from siyu.customers.models import Customer, Relationship
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory, RelationshipFactory
from siyu.events.models import Event
from siyu.org.models import Staff
from siyu.org.selectors import Viewer
from siyu.org.tests.factories import StaffFactory
from siyu.segments.dsl import (
    SegmentError,
    compile_definition,
    segment_count,
    segment_members,
    validate_definition,
    vocabulary,
)
from siyu.segments.models import CustomerClv, Segment
from siyu.segments.rfm import PAID_STATUSES
from siyu.tags.models import CustomerTag
from siyu.tags.tests.factories import TagFactory

AS_OF = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
ADMIN = Viewer(
    user_id=None, staff_id=None, role=Staff.Role.ADMIN, store_id=None, sees_full_pii=False
)
_refs = count(1)


def members(definition, as_of=AS_OF) -> set[int]:
    return set(
        Customer.objects.live()
        .filter(compile_definition(definition, as_of=as_of))
        .values_list("pk", flat=True)
    )


def ids(*customers) -> set[int]:
    return {c.pk for c in customers}


def order(customer, *, days=1, amount=100, refund=0, status=Order.Status.PAID, titles=(), at=None):
    paid = at or AS_OF - timedelta(days=days)
    made = Order.objects.create(
        channel=ChannelFactory(code="tmall"),
        external_id=f"D{next(_refs)}",
        customer=customer,
        status=status,
        amount=Decimal(amount),
        refund_amount=Decimal(refund),
        placed_at=paid,
        paid_at=paid,
    )
    for title in titles:
        OrderItem.objects.create(order=made, title=title)
    return made


# ---------------------------------------------------------------------------- examples


@pytest.mark.django_db
def test_categorical_attributes():
    # given
    web = ChannelFactory(code="web")
    she = CustomerFactory(gender="f", province="上海", first_channel=web, consent_sms=True)
    he = CustomerFactory(gender="m", province="广东", consent_sms=False)
    unknown = CustomerFactory(gender="", stage="member", is_super_user=True)
    # when / then
    assert members({"attr": "gender", "op": "eq", "value": "f"}) == ids(she)
    assert members({"attr": "gender", "op": "ne", "value": "f"}) == ids(he, unknown)
    assert members({"attr": "gender", "op": "in", "value": ["f", "m"]}) == ids(she, he)
    assert members({"attr": "gender", "op": "is_set", "value": False}) == ids(unknown)
    assert members({"attr": "province", "op": "is_set", "value": True}) == ids(she, he)
    assert members({"attr": "first_channel", "op": "eq", "value": "web"}) == ids(she)
    assert members({"attr": "first_channel", "op": "ne", "value": "web"}) == ids(he, unknown)
    assert members({"attr": "consent_sms", "op": "is_set", "value": False}) == ids(unknown)
    assert members({"attr": "consent_sms", "op": "ne", "value": True}) == ids(he, unknown)
    assert members({"attr": "stage", "op": "eq", "value": "member"}) == ids(unknown)
    assert members({"attr": "is_super_user", "op": "eq", "value": True}) == ids(unknown)


@pytest.mark.django_db
def test_owner_and_store():
    staff = StaffFactory()
    mine = CustomerFactory(owner=staff)
    other = CustomerFactory()
    assert members({"attr": "owner", "op": "eq", "value": staff.pk}) == ids(mine)
    assert members({"attr": "store", "op": "in", "value": [staff.store_id]}) == ids(mine)
    assert members({"attr": "owner", "op": "is_set", "value": False}) == ids(other)


@pytest.mark.django_db
def test_age_counts_whole_years_at_the_as_of_day():
    # given: AS_OF is 2026-06-30 in Shanghai
    thirty_today = CustomerFactory(birthday=date(1996, 6, 30))
    thirty_tomorrow = CustomerFactory(birthday=date(1996, 7, 1))
    CustomerFactory(birthday=None)
    # then
    assert members({"attr": "age", "op": "gte", "value": 30}) == ids(thirty_today)
    assert members({"attr": "age", "op": "lte", "value": 29}) == ids(thirty_tomorrow)
    both = {"attr": "age", "op": "between", "value": [29, 30]}
    assert members(both) == ids(thirty_today, thirty_tomorrow)


@pytest.mark.django_db
def test_leap_day_birthdays():
    leapling = CustomerFactory(birthday=date(2000, 2, 29))
    on_28th = datetime(2026, 2, 28, 4, tzinfo=UTC)
    on_1st = datetime(2026, 3, 1, 4, tzinfo=UTC)
    assert members({"attr": "age", "op": "gte", "value": 26}, on_28th) == set()
    assert members({"attr": "age", "op": "gte", "value": 26}, on_1st) == ids(leapling)


@pytest.mark.django_db
def test_first_seen():
    old = CustomerFactory(first_seen_at=AS_OF - timedelta(days=100))
    new = CustomerFactory(first_seen_at=AS_OF - timedelta(days=3))
    assert members({"attr": "first_seen", "op": "within_days", "value": 7}) == ids(new)
    assert members({"attr": "first_seen", "op": "before", "value": "2026-06-01"}) == ids(old)
    assert members({"attr": "first_seen", "op": "after", "value": "2026-06-26"}) == ids(new)
    assert members({"attr": "first_seen", "op": "after", "value": "2026-06-27"}) == set()


@pytest.mark.django_db
def test_rfm_scores_and_monetary():
    top = CustomerFactory(rfm_r=5, rfm_f=4, rfm_m=5, rfm_monetary=Decimal("1200.50"))
    low = CustomerFactory(rfm_r=1, rfm_f=1, rfm_m=2, rfm_monetary=Decimal("10"))
    unscored = CustomerFactory()  # no paid orders: no scores, monetary 0
    assert members({"attr": "rfm_r", "op": "eq", "value": 5}) == ids(top)
    assert members({"attr": "rfm_f", "op": "lte", "value": 3}) == ids(low)
    assert members({"attr": "rfm_m", "op": "between", "value": [2, 5]}) == ids(top, low)
    assert members({"attr": "rfm_monetary", "op": "gte", "value": 1200.5}) == ids(top)
    assert members({"attr": "rfm_monetary", "op": "lte", "value": 10}) == ids(low, unscored)


@pytest.mark.django_db
def test_tags():
    a, b = TagFactory(), TagFactory()
    both, only_a, none = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer, tag in [(both, a), (both, b), (only_a, a)]:
        CustomerTag.objects.create(customer=customer, tag=tag, source="manual")
    assert members({"tags": {"any": [a.pk, b.pk]}}) == ids(both, only_a)
    assert members({"tags": {"all": [a.pk, b.pk]}}) == ids(both)
    assert members({"tags": {"none": [b.pk]}}) == ids(only_a, none)


@pytest.mark.django_db
def test_order_counts_windows_and_statuses():
    # given
    twice = CustomerFactory()
    order(twice, days=10)
    order(twice, days=300, status=Order.Status.COMPLETED)
    lapsed = CustomerFactory()
    order(lapsed, days=90)
    order(lapsed, days=5, status=Order.Status.CANCELLED)
    order(lapsed, days=5, status=Order.Status.PENDING)
    never = CustomerFactory()
    # then
    year_twice = {"orders": {"within_days": 365, "count": {"gte": 2}}}
    assert members(year_twice) == ids(twice)
    assert members({"orders": {"within_days": 60, "none": True}}) == ids(lapsed, never)
    assert members({"orders": {"count": {"lte": 0}}}) == ids(never)
    assert members({"orders": {"within_days": 60}}) == ids(twice)
    assert members({"orders": {"count": {"gte": 1, "lte": 1}}}) == ids(lapsed)


@pytest.mark.django_db
def test_order_amount_is_net_of_refunds():
    big = CustomerFactory()
    order(big, amount=800, days=10)
    order(big, amount=300, refund=50, status=Order.Status.PARTIALLY_REFUNDED, days=20)
    refunded = CustomerFactory()
    order(refunded, amount=5000, refund=5000, status=Order.Status.REFUNDED)
    old = CustomerFactory()
    order(old, amount=5000, days=400)
    assert members({"orders": {"amount": {"gte": 1000}, "within_days": 365}}) == ids(big)
    assert members({"orders": {"amount": {"gte": 1050.01}}}) == ids(old)
    assert members({"orders": {"amount": {"lte": 0}, "within_days": 365}}) == ids(refunded, old)


@pytest.mark.django_db
def test_order_product():
    cream = CustomerFactory()
    order(cream, titles=["保湿面霜 50ml", "口红"], days=100)
    lipstick = CustomerFactory()
    order(lipstick, titles=["口红"])
    order(lipstick, titles=["面霜"], status=Order.Status.CANCELLED)
    assert members({"orders": {"product": "面霜"}}) == ids(cream)
    assert members({"orders": {"product": "面霜", "within_days": 30}}) == set()
    assert members({"orders": {"product": "口红", "count": {"gte": 1}}}) == ids(cream, lipstick)


@pytest.mark.django_db
def test_relationships():
    staff = StaffFactory()
    friend = RelationshipFactory(staff=staff).customer
    gone = RelationshipFactory(
        staff=staff,
        status=Relationship.Status.REMOVED,
        removed_by=Relationship.RemovedBy.CUSTOMER,
        removed_at=AS_OF,
    ).customer
    RelationshipFactory(
        staff=staff, status=Relationship.Status.REMOVED, removed_by=Relationship.RemovedBy.STAFF
    )
    assert members({"relationship": "active_friend"}) == ids(friend)
    assert members({"relationship": "deleted_us"}) == ids(gone)


def event(customer, *, days: float = 1, type="material_view", **properties):
    return Event.objects.create(
        customer=customer,
        type=type,
        occurred_at=AS_OF - timedelta(days=days),
        properties=properties,
    )


@pytest.mark.django_db
def test_orders_count_paid_orders_as_rfm_does():
    # given: a full refund, a partial one, an order paid after the as-of time, and one
    # whose platform exported only the time it was placed
    full = CustomerFactory()
    order(full, amount=300, refund=300, status=Order.Status.PARTIALLY_REFUNDED)
    partial = CustomerFactory()
    order(partial, amount=300, refund=100, status=Order.Status.PARTIALLY_REFUNDED)
    later = CustomerFactory()
    order(later, days=-1)
    placed = CustomerFactory()
    made = order(placed, days=10)
    Order.objects.filter(pk=made.pk).update(paid_at=None)
    # then
    assert members({"orders": {"count": {"gte": 1}}}) == ids(partial, placed)
    assert members({"orders": {"within_days": 30}}) == ids(partial, placed)
    assert members({"orders": {"none": True}}) == ids(full, later)


@pytest.mark.django_db
def test_first_and_last_paid_order():
    # given: AS_OF is 2026-06-30 12:00 in Shanghai
    regular = CustomerFactory()
    order(regular, days=200)  # 2025-12-12
    order(regular, days=10)  # 2026-06-20
    refunded_last = CustomerFactory()
    order(refunded_last, days=100)  # 2026-03-22
    order(refunded_last, days=5, amount=300, refund=300, status=Order.Status.PARTIALLY_REFUNDED)
    new = CustomerFactory()
    order(new, days=3)  # 2026-06-27
    future = CustomerFactory()
    order(future, days=-2)  # paid after the as-of time
    edge = CustomerFactory()
    order(edge, days=30)  # exactly 30 days: outside a 30-day window
    never = CustomerFactory()
    last_30 = {"attr": "last_order", "op": "within_days", "value": 30}
    first_30 = {"attr": "first_order", "op": "within_days", "value": 30}
    # then: an order refunded in full is no last order
    assert members(last_30) == ids(regular, new)
    assert members({"not": last_30}) == ids(refunded_last, future, edge, never)
    assert members({**last_30, "value": 31}) == ids(regular, new, edge)
    assert members(first_30) == ids(new)
    assert members({"attr": "first_order", "op": "before", "value": "2026-01-01"}) == ids(regular)
    assert members({"attr": "first_order", "op": "after", "value": "2026-03-21"}) == ids(
        refunded_last, new, edge
    )
    assert members({"attr": "last_order", "op": "before", "value": "2026-06-20"}) == ids(
        refunded_last, edge
    )
    assert members({"attr": "last_order", "op": "after", "value": "2026-06-20"}) == ids(new)


@pytest.mark.django_db
def test_order_days_are_days_in_the_organisation_time_zone():
    # given: midnight of 27 June in Shanghai is 16:00 UTC on the 26th
    midnight = CustomerFactory()
    order(midnight, at=datetime(2026, 6, 26, 16, 0, tzinfo=UTC))
    before_midnight = CustomerFactory()
    order(before_midnight, at=datetime(2026, 6, 26, 15, 59, tzinfo=UTC))
    # then
    after_26th = {"attr": "last_order", "op": "after", "value": "2026-06-26"}
    assert members(after_26th) == ids(midnight)
    before_27th = {"attr": "first_order", "op": "before", "value": "2026-06-27"}
    assert members(before_27th) == ids(before_midnight)


@pytest.mark.django_db
def test_events_in_a_window_start_after_its_edge():
    # given: an event exactly 30 days old lies outside a 30-day window
    edge = CustomerFactory()
    event(edge, days=30)
    inside = CustomerFactory()
    event(inside, days=30 - 1 / 1440)  # a minute later
    future = CustomerFactory()
    event(future, days=-1)  # after the as-of time: never counts
    other = CustomerFactory()
    event(other, type="link_click")
    # then
    assert members({"events": {"type": "material_view", "within_days": 30}}) == ids(inside)
    assert members({"events": {"type": "material_view"}}) == ids(edge, inside)
    no_view = {"events": {"type": "material_view", "within_days": 30, "none": True}}
    assert members(no_view) == ids(edge, future, other)


@pytest.mark.django_db
def test_events_at_least_n_times():
    # given
    twice = CustomerFactory()
    event(twice, days=1, material_id=12, channel="wecom")
    event(twice, days=2, material_id=12, channel="wecom")
    event(twice, days=3, material_id=13, channel="wecom")
    spread = CustomerFactory()
    event(spread, days=3, material_id=12, channel="wecom")
    event(spread, days=40, material_id=12, channel="wecom")
    # then
    spec = {"type": "material_view", "properties": {"material_id": 12, "channel": "wecom"}}
    assert members({"events": {**spec, "within_days": 30, "at_least": 2}}) == ids(twice)
    assert members({"events": {**spec, "at_least": 2}}) == ids(twice, spread)
    assert members({"events": {"type": "material_view", "at_least": 3}}) == ids(twice)
    assert members({"events": {"type": "material_view", "at_least": 4}}) == set()


@pytest.mark.django_db
def test_event_properties_compare_with_their_json_type():
    # given
    number = CustomerFactory()
    event(number, material_id=12, liked=False)
    text = CustomerFactory()
    event(text, material_id="12")
    real = CustomerFactory()
    event(real, material_id=12.0, liked=True)
    one = CustomerFactory()
    event(one, liked=1)
    word = CustomerFactory()
    event(word, liked="true", contains="面霜")

    def viewed(**properties):
        return members({"events": {"type": "material_view", "properties": properties}})

    # then: 12 and 12.0 are one number; "12" is a string; true is neither 1 nor "true"
    assert viewed(material_id=12) == ids(number, real)
    assert viewed(material_id="12") == ids(text)
    assert viewed(liked=True) == ids(real)
    assert viewed(liked=1) == ids(one)
    assert viewed(liked="true") == ids(word)
    assert viewed(liked=False) == ids(number)
    assert viewed(material_id=12, liked=True) == ids(real)
    # a property named like a query lookup is still a property
    assert viewed(contains="面霜") == ids(word)


@pytest.mark.django_db
def test_lifetime_value_thresholds():
    # given
    likely = CustomerFactory()
    CustomerClv.objects.create(
        customer=likely, p_alive=0.9, purchases_90=1.5, purchases_365=4.2, value_365=1200
    )
    fading = CustomerFactory()
    CustomerClv.objects.create(
        customer=fading, p_alive=0.1, purchases_90=0.01, purchases_365=0.05, value_365=20
    )
    unscored = CustomerFactory()
    alive = {"attr": "p_alive", "op": "gte", "value": 0.5}
    # then: a customer the model did not score never meets a threshold
    assert members(alive) == ids(likely)
    assert members({"attr": "p_alive", "op": "lte", "value": 0.5}) == ids(fading)
    assert members({"not": alive}) == ids(fading, unscored)
    assert members({"attr": "clv_value", "op": "between", "value": [20, 1199.99]}) == ids(fading)
    assert members({"attr": "clv_purchases_90", "op": "gte", "value": 1}) == ids(likely)
    assert members({"attr": "clv_purchases_365", "op": "lte", "value": 0.05}) == ids(fading)
    both = {"all": [alive, {"attr": "clv_value", "op": "gte", "value": 1000}]}
    assert members(both) == ids(likely)


@pytest.mark.django_db
def test_birthday_month_and_region():
    june = CustomerFactory(birthday=date(1990, 6, 5), province="浙江", city="杭州")
    july = CustomerFactory(birthday=date(2001, 7, 31), province="浙江", city="宁波")
    unknown = CustomerFactory(birthday=None, province="上海")
    assert members({"attr": "birthday_month", "op": "eq", "value": 6}) == ids(june)
    assert members({"attr": "birthday_month", "op": "in", "value": [6, 7]}) == ids(june, july)
    assert members({"not": {"attr": "birthday_month", "op": "eq", "value": 6}}) == ids(
        july, unknown
    )
    assert members({"attr": "province", "op": "eq", "value": "浙江"}) == ids(june, july)
    assert members({"attr": "city", "op": "in", "value": ["杭州", "上海"]}) == ids(june)
    assert members({"attr": "city", "op": "is_set", "value": False}) == ids(unknown)


@pytest.mark.django_db
def test_groups_nest():
    she = CustomerFactory(gender="f", stage="member")
    he = CustomerFactory(gender="m", stage="member")
    lead = CustomerFactory(gender="f")
    female = {"attr": "gender", "op": "eq", "value": "f"}
    member = {"attr": "stage", "op": "eq", "value": "member"}
    assert members({"all": [female, member]}) == ids(she)
    assert members({"any": [female, member]}) == ids(she, he, lead)
    assert members({"not": {"all": [female, member]}}) == ids(he, lead)


@pytest.mark.django_db
def test_merged_customers_are_never_members():
    survivor = CustomerFactory(gender="f")
    CustomerFactory(gender="f", merged_into=survivor)
    assert members({"attr": "gender", "op": "eq", "value": "f"}) == ids(survivor)


@pytest.mark.django_db
def test_a_segment_is_one_query(django_assert_num_queries):
    tag = TagFactory()
    definition = {
        "all": [
            {"tags": {"any": [tag.pk]}},
            {"orders": {"within_days": 365, "count": {"gte": 2}}},
            {"orders": {"amount": {"gte": 10}, "product": "面霜"}},
            {"not": {"relationship": "deleted_us"}},
            {"events": {"type": "material_view", "within_days": 30, "at_least": 2}},
            {"events": {"type": "visit", "within_days": 30, "properties": {"x": 1}, "none": True}},
            {"attr": "p_alive", "op": "gte", "value": 0.5},
            {"attr": "last_order", "op": "before", "value": "2026-05-01"},
        ]
    }
    with django_assert_num_queries(1):
        assert segment_count(definition, ADMIN, as_of=AS_OF) == 0


# ---------------------------------------------------------------------------- scope


@pytest.mark.django_db
def test_a_staff_viewer_sees_only_their_customers():
    # given
    alice, bob = StaffFactory(), StaffFactory()
    owned = CustomerFactory(owner=alice, gender="f")
    befriended = RelationshipFactory(staff=alice, customer=CustomerFactory(gender="f")).customer
    CustomerFactory(owner=bob, gender="f")
    CustomerFactory(gender="f")
    viewer = Viewer(
        user_id=alice.user_id,
        staff_id=alice.pk,
        role=Staff.Role.STAFF,
        store_id=alice.store_id,
        sees_full_pii=False,
    )
    female = {"attr": "gender", "op": "eq", "value": "f"}
    # when / then
    assert set(segment_members(female, viewer, AS_OF)) == {owned, befriended}
    assert segment_count(female, viewer) == 2
    assert segment_count(female, ADMIN) == 4


# ---------------------------------------------------------------------------- validation

FEMALE = {"attr": "gender", "op": "eq", "value": "f"}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], "definition: must be an object"),
        ({}, 'definition: must have one of "all", "any", "not", "attr", "tags", "orders"'),
        ({"all": []}, "all: must be a non-empty list of conditions"),
        ({"all": [FEMALE], "x": 1}, 'definition: unknown key "x"'),
        ({"all": [FEMALE], "any": [FEMALE]}, 'definition: must have only one of "all", "any"'),
        (
            {"all": [FEMALE, FEMALE, {"orders": {"count": {"gte": -1}}}]},
            'all[2].orders.count: "gte" must be a non-negative integer',
        ),
        (
            {"all": [FEMALE, FEMALE, {"orders": {"count": {"gte": 1.5}}}]},
            'all[2].orders.count: "gte" must be a non-negative integer',
        ),
        (
            {"any": [{"attr": "shoe_size", "op": "eq", "value": 1}]},
            "any[0].attr: unknown attribute",
        ),
        ({"attr": "gender", "op": "gte", "value": "f"}, "op: unknown op 'gte' for \"gender\""),
        ({"attr": "gender", "op": "eq", "value": "x"}, "value: must be a gender code"),
        ({"attr": "gender", "op": "eq"}, 'definition: missing "value"'),
        ({"attr": "gender", "op": "in", "value": []}, "value: must be a non-empty list"),
        ({"attr": "owner", "op": "in", "value": [1, "2"]}, "value[1]: must be a staff id"),
        ({"attr": "store", "op": "eq", "value": 2**63}, "value: must be a store id"),
        ({"attr": "age", "op": "between", "value": [40, 30]}, "value: low must not exceed high"),
        ({"attr": "rfm_r", "op": "eq", "value": 6}, "value: must be an integer from 1 to 5"),
        ({"attr": "first_seen", "op": "before", "value": "2026-13-01"}, "value: must be a date"),
        ({"not": {"tags": {"any": []}}}, "not.tags.any: must be a non-empty list of tag ids"),
        ({"tags": {"any": [1], "all": [2]}}, "tags: must be an object with exactly one of"),
        ({"tags": {"some": [1]}}, 'tags: unknown key "some"'),
        ({"tags": {"all": [1, True]}}, "tags.all[1]: must be a positive integer tag id"),
        ({"orders": {"none": False}}, "orders.none: must be true"),
        ({"orders": {"none": True, "count": {"gte": 1}}}, 'orders: use only one of "count"'),
        ({"orders": {"within_days": 0}}, "orders.within_days: must be an integer from 1"),
        ({"orders": {"amount": {"gt": 1}}}, 'orders.amount: unknown key "gt"'),
        ({"orders": {"product": ""}}, "orders.product: must be a non-empty string"),
        ({"orders": {"colour": "red"}}, 'orders: unknown key "colour"'),
        ({"relationship": "enemy"}, "relationship: must be one of"),
        ({"relationship": ["enemy"]}, "relationship: must be one of"),
        ({"attr": ["gender"], "op": "eq", "value": "f"}, "attr: unknown attribute"),
        ({"events": {}}, "events: must be a non-empty object"),
        ({"events": {"within_days": 30}}, 'events: missing "type"'),
        ({"events": {"type": "看 过"}}, "events.type: must be an event type name"),
        ({"events": {"type": "v", "at_least": 0}}, "events.at_least: must be an integer from 1"),
        (
            {"events": {"type": "v", "at_least": 2, "none": True}},
            'events: use only one of "at_least", "none"',
        ),
        ({"events": {"type": "v", "none": 1}}, "events.none: must be true"),
        ({"events": {"type": "v", "properties": {}}}, "events.properties: must be a non-empty"),
        (
            {"events": {"type": "v", "properties": {"material_id": [12]}}},
            "events.properties.material_id: must be a string of at most 100 characters, a number",
        ),
        (
            {"events": {"type": "v", "properties": {"material_id": None}}},
            "events.properties.material_id: must be a string",
        ),
        (
            {"not": {"events": {"type": "v", "properties": {"p": float("nan")}}}},
            "not.events.properties.p: must be a string",
        ),
        ({"events": {"type": "v", "properties": {"0": 1}}}, "events.properties.0: a property"),
        (
            {"events": {"type": "v", "properties": {f"k{i}": i for i in range(11)}}},
            "events.properties: must have at most 10 properties",
        ),
        ({"events": {"type": "v", "colour": "red"}}, 'events: unknown key "colour"'),
        ({"attr": "p_alive", "op": "gte", "value": 1.5}, "value: must be a number from 0 to 1"),
        ({"attr": "clv_value", "op": "lte", "value": 10**400}, "value: must be a non-negative"),
        ({"attr": "clv_value", "op": "lte", "value": float("inf")}, "value: must be a non-"),
        ({"attr": "p_alive", "op": "eq", "value": 0.5}, "op: unknown op 'eq' for \"p_alive\""),
        ({"attr": "clv_value", "op": "between", "value": [500, 100]}, "value: low must not"),
        ({"attr": "clv_purchases_90", "op": "lte", "value": -1}, "value: must be a non-negative"),
        ({"attr": "last_order", "op": "within_days", "value": 0}, "value: must be an integer"),
        ({"attr": "first_order", "op": "after", "value": "0001-01-01"}, "value: must be a date"),
        ({"attr": "birthday_month", "op": "in", "value": [6, 13]}, "value[1]: must be an integer"),
        ({"attr": "birthday_month", "op": "ne", "value": 6}, "op: unknown op 'ne'"),
        ({"any": [FEMALE, {"not": "x"}]}, "any[1].not: must be an object"),
    ],
)
def test_validation_names_the_path(definition, message):
    with pytest.raises(SegmentError) as caught:
        validate_definition(definition)
    assert caught.value.message.startswith(message)


def _sample(value: dict):
    """A value a form built from the vocabulary could offer."""
    return {
        "choice": lambda: value["choices"][-1]["value"],
        "integer": lambda: value["max"],
        "number": lambda: value["max"],
        "date": lambda: "2026-06-01",
        "text": lambda: "x",
        "id": lambda: 1,
        "boolean": lambda: True,
        "true": lambda: True,
        "scalar": lambda: "wecom",
    }[value["kind"]]()


def _shaped(shape: str, value):
    return {"one": value, "list": [value], "pair": [value, value], "range": {"gte": value}}.get(
        shape, {"channel": value}
    )


def vocabulary_samples() -> list[dict]:
    """One definition per attribute and op, and per key of each leaf, read off the vocabulary."""
    words = vocabulary()
    samples = []
    for attribute in words["attributes"]:
        for op in attribute["ops"]:
            described = words["ops"][op]
            value = _sample(described.get("value", attribute["value"]))
            samples.append(
                {"attr": attribute["name"], "op": op, "value": _shaped(described["shape"], value)}
            )
    for name in ("orders", "events"):
        leaf = words["leaves"][name]
        required = {key["name"]: _sample(key["value"]) for key in leaf["keys"]}
        required = {name: required[name] for name in leaf["required"]}
        for key in leaf["keys"]:
            spec = {key["name"]: _shaped(key["shape"], _sample(key["value"]))}
            samples.append({name: {**required, **spec}})
    tags = words["leaves"]["tags"]
    samples += [{"tags": {m["value"]: [_sample(tags["value"])]}} for m in tags["modes"]]
    relationship = words["leaves"]["relationship"]["value"]
    samples += [{"relationship": c["value"]} for c in relationship["choices"]]
    return samples


def test_the_vocabulary_is_json_with_labels_in_the_active_language():
    with translation.override("zh-hans"):
        words = json.loads(json.dumps(vocabulary()))
    labels = {a["name"]: a["label"] for a in words["attributes"]}
    assert labels["gender"] == "性别"
    assert labels["p_alive"] == "存活概率"
    assert labels["birthday_month"] == "生日月份"
    assert words["leaves"]["events"]["label"] == "行为事件"
    assert set(labels) >= {"province", "city", "birthday_month", "first_order", "last_order"}
    gender = next(a for a in words["attributes"] if a["name"] == "gender")
    assert gender["ops"] == ["eq", "ne", "in", "is_set"]
    assert {"value": "f", "label": "女"} in gender["value"]["choices"]
    assert words["ops"]["within_days"]["value"] == {"kind": "integer", "min": 1, "max": 36500}
    events = {key["name"]: key for key in words["leaves"]["events"]["keys"]}
    assert events["at_least"]["default"] == 1
    assert words["leaves"]["events"]["required"] == ["type"]


@pytest.mark.django_db
def test_everything_the_vocabulary_offers_is_valid_and_compiles(django_assert_num_queries):
    samples = vocabulary_samples()
    assert len(samples) > 80
    for definition in samples:
        with django_assert_num_queries(1):
            segment_count(definition, ADMIN, as_of=AS_OF)


def test_nesting_deeper_than_ten_is_refused():
    definition = FEMALE
    for _ in range(10):
        definition = {"not": definition}
    validate_definition(definition)
    with pytest.raises(
        SegmentError, match=r"^not\.not\.not\.not\.not\.not\.not\.not\.not\.not: nested"
    ):
        validate_definition({"not": definition})


def test_more_than_a_hundred_conditions_is_refused():
    validate_definition({"any": [FEMALE] * 100})
    with pytest.raises(SegmentError, match=r"^any\[100\]: more than 100 conditions"):
        validate_definition({"any": [FEMALE] * 101})


def test_compile_validates_first():
    with pytest.raises(SegmentError):
        compile_definition({"all": [{"orders": {"count": {"gte": "2"}}}]})


@pytest.mark.django_db
def test_saved_segment_validates_its_definition():
    Segment.objects.create(name="她", definition=FEMALE).full_clean()
    with pytest.raises(ValidationError, match="definition"):
        Segment(name="坏", definition={"all": []}).full_clean()


# ---------------------------------------------------------------------------- property


@dataclass
class Data:
    as_of: datetime
    tags: dict[int, set[int]] = field(default_factory=dict)
    orders: dict[int, list[dict]] = field(default_factory=dict)
    relationships: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    events: dict[int, list[dict]] = field(default_factory=dict)
    clv: dict[int, dict] = field(default_factory=dict)


def _age(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def _compare(value, op, target) -> bool:
    if value is None:
        return False
    if op == "eq":
        return value == target
    if op == "gte":
        return value >= target
    if op == "lte":
        return value <= target
    return target[0] <= value <= target[1]  # between


def _moment_in_python(moment: datetime | None, op: str, target, as_of: datetime) -> bool:
    if moment is None:
        return False
    if op == "within_days":
        return as_of - timedelta(days=target) < moment <= as_of
    day = timezone.localtime(moment).date()
    bound = date.fromisoformat(target)
    return day < bound if op == "before" else day > bound


def _paid_in_python(c: Customer, data: Data) -> list[dict]:
    """Orders as RFM counts them: paid status, not refunded in full, paid by the as-of time."""
    return [
        o
        for o in data.orders.get(c.pk, [])
        if o["status"] in PAID_STATUSES
        and (o["refund"] == 0 or o["refund"] < o["amount"])
        and o["paid_time"] is not None
        and o["paid_time"] <= data.as_of
    ]


CLV_FIELDS = {
    "p_alive": "p_alive",
    "clv_value": "value_365",
    "clv_purchases_90": "purchases_90",
    "clv_purchases_365": "purchases_365",
}


def _decimals(target):
    return [Decimal(str(t)) for t in target] if isinstance(target, list) else Decimal(str(target))


def _attr_in_python(node: dict, c: Customer, data: Data) -> bool:
    name, op, target = node["attr"], node["op"], node["value"]
    if name == "age":
        born = c.birthday
        today = timezone.localdate(data.as_of)
        return _compare(None if born is None else _age(born, today), op, target)
    if name == "first_seen":
        return _moment_in_python(c.first_seen_at, op, target, data.as_of)
    if name in ("first_order", "last_order"):
        times = [o["paid_time"] for o in _paid_in_python(c, data)]
        moment = (min if name == "first_order" else max)(times, default=None)
        return _moment_in_python(moment, op, target, data.as_of)
    if name in CLV_FIELDS:
        row = data.clv.get(c.pk)
        value = None if row is None else row[CLV_FIELDS[name]]
        return _compare(value, op, _decimals(target) if name == "clv_value" else target)
    if name in ("rfm_r", "rfm_f", "rfm_m"):
        return _compare(getattr(c, name), op, target)
    if name == "rfm_monetary":
        return _compare(c.rfm_monetary, op, _decimals(target))
    value = {
        "first_channel": c.first_channel.code if c.first_channel else None,
        "owner": c.owner_id,
        "store": c.store_id,
        "birthday_month": c.birthday.month if c.birthday else None,
    }.get(name, getattr(c, name, None))
    if op == "is_set":
        return (value not in (None, "")) == target
    if op == "in":
        return value in target
    if op == "ne":
        return value != target
    return value == target


def _orders_in_python(spec: dict, c: Customer, data: Data) -> bool:
    picked = []
    for o in _paid_in_python(c, data):
        if "within_days" in spec and not (
            data.as_of - timedelta(days=spec["within_days"]) < o["paid_time"]
        ):
            continue
        if "product" in spec and not any(spec["product"].lower() in t.lower() for t in o["titles"]):
            continue
        picked.append(o)
    if "count" in spec:
        bounds = spec["count"]
        n = len(picked)
        return n >= bounds.get("gte", n) and n <= bounds.get("lte", n)
    if "amount" in spec:
        bounds = {k: Decimal(str(v)) for k, v in spec["amount"].items()}
        net = sum((o["amount"] - o["refund"] for o in picked), Decimal(0))
        return net >= bounds.get("gte", net) and net <= bounds.get("lte", net)
    if spec.get("none"):
        return not picked
    return bool(picked)


def _same_json(a, b) -> bool:
    """JSON equality: 12 == 12.0, but neither is "12" nor true."""
    kinds = {type(v) if isinstance(v, bool | str) else float for v in (a, b)}
    return len(kinds) == 1 and a == b


def _events_in_python(spec: dict, c: Customer, data: Data) -> bool:
    found = 0
    for e in data.events.get(c.pk, []):
        if e["type"] != spec["type"] or e["at"] > data.as_of:
            continue
        if "within_days" in spec and not data.as_of - timedelta(days=spec["within_days"]) < e["at"]:
            continue
        wanted = spec.get("properties", {})
        if all(
            k in e["properties"] and _same_json(e["properties"][k], v) for k, v in wanted.items()
        ):
            found += 1
    if spec.get("none"):
        return found == 0
    return found >= spec.get("at_least", 1)


def evaluate_in_python(definition: dict, customer: Customer, data: Data) -> bool:
    """Whether the customer belongs to the segment, by reading the data directly."""
    if "all" in definition:
        return all(evaluate_in_python(d, customer, data) for d in definition["all"])
    if "any" in definition:
        return any(evaluate_in_python(d, customer, data) for d in definition["any"])
    if "not" in definition:
        return not evaluate_in_python(definition["not"], customer, data)
    if "attr" in definition:
        return _attr_in_python(definition, customer, data)
    if "tags" in definition:
        ((mode, wanted),) = definition["tags"].items()
        have = data.tags.get(customer.pk, set())
        if mode == "any":
            return bool(have & set(wanted))
        if mode == "all":
            return set(wanted) <= have
        return not have & set(wanted)
    if "orders" in definition:
        return _orders_in_python(definition["orders"], customer, data)
    if "events" in definition:
        return _events_in_python(definition["events"], customer, data)
    rels = data.relationships.get(customer.pk, [])
    if definition["relationship"] == "active_friend":
        return any(status == "active" for status, _ in rels)
    return any(by == "customer" for _, by in rels)


GENDERS = ["", "m", "f"]
PROVINCES = ["", "上海", "广东"]
CITIES = ["", "杭州", "深圳"]
STAGES = ["lead", "member", "lost"]
TITLES = ["保湿面霜", "口红", "精华"]
AS_OFS = [AS_OF, datetime(2028, 2, 29, 4, tzinfo=UTC)]
EDGES = [29, 30, 31, 89, 90, 91, 364, 365, 366]
EVENT_TYPES = ["material_view", "link_click"]
# Values that SQL could confuse: a number and its string, true and 1 and "true".
PROPERTY_VALUES = {"material_id": [12, 12.0, "12"], "flag": [True, 1, "true"]}
P_ALIVE = [0, 0.2, 0.5, 0.8, 1]
CLV_VALUES = [0, 99.5, 500, 1200]
PURCHASES = [0, 0.5, 1.25, 3]

clv_row = st.fixed_dictionaries(
    {
        "p_alive": st.sampled_from(P_ALIVE),
        "value_365": st.sampled_from(CLV_VALUES),
        "purchases_90": st.sampled_from(PURCHASES),
        "purchases_365": st.sampled_from(PURCHASES),
    }
)
customer_row = st.fixed_dictionaries(
    {
        "gender": st.sampled_from(GENDERS),
        "province": st.sampled_from(PROVINCES),
        "city": st.sampled_from(CITIES),
        "stage": st.sampled_from(STAGES),
        "rfm_r": st.one_of(st.none(), st.integers(1, 5)),
        "rfm_monetary": st.integers(0, 2000),
        "birthday": st.one_of(
            st.none(),
            st.dates(date(1950, 1, 1), date(2025, 12, 31)),
            st.tuples(st.integers(18, 40), st.integers(-1, 1)),  # years, days off a birthday
        ),
        "first_seen_days": st.integers(-2, 400),
        "owner": st.sampled_from([None, 0, 1]),
        "channel": st.sampled_from([None, "web", "shop"]),
        "consent_sms": st.sampled_from([None, True, False]),
        "clv": st.one_of(st.none(), clv_row),
    }
)
order_row = st.fixed_dictionaries(
    {
        "customer": st.integers(0, 5),
        "status": st.sampled_from([*PAID_STATUSES, *Order.Status.values]),
        "amount": st.sampled_from([0, 100, 300, 800, 1000]),
        "refund_share": st.sampled_from([0, 0, 0.5, 1]),
        # Orders land on window edges (30, 90, 365 days) often, and sometimes in the future.
        "paid_days": st.one_of(st.none(), st.integers(-5, 500), st.sampled_from(EDGES)),
        # Without a paid time the placed time counts.
        "placed_days": st.one_of(st.none(), st.integers(0, 400)),
        "titles": st.lists(st.sampled_from(TITLES), max_size=2),
    }
)
event_row = st.fixed_dictionaries(
    {
        "customer": st.integers(0, 3),
        "type": st.sampled_from(EVENT_TYPES),
        # Whole days put events exactly on a window's edge; -1 is after the as-of time.
        "days": st.sampled_from([-1, 0, 1, 29, 30, 31, 90, 200]),
        "minutes": st.sampled_from([0, 0, 5]),
        "properties": st.fixed_dictionaries(
            {},
            optional={key: st.sampled_from(values) for key, values in PROPERTY_VALUES.items()},
        ),
    }
)
relationship_row = st.tuples(
    st.integers(0, 11),
    st.integers(0, 1),
    st.sampled_from([("active", ""), ("removed", "customer"), ("removed", "staff")]),
)
dataset = st.fixed_dictionaries(
    {
        "as_of": st.sampled_from(AS_OFS),
        "customers": st.lists(customer_row, min_size=4, max_size=12),
        "orders": st.lists(order_row, max_size=12),
        "events": st.lists(event_row, max_size=16),
        "tag_links": st.lists(st.tuples(st.integers(0, 11), st.integers(0, 2)), max_size=10),
        "relationships": st.lists(relationship_row, max_size=5),
    }
)


def leaf_strategy(tag_ids: list[int], staff_ids: list[int], as_of: datetime):
    def attr(name, ops, values):
        return st.builds(
            lambda op, value: {"attr": name, "op": op, "value": value},
            st.sampled_from(ops),
            values,
        )

    def categorical(name, pool):
        return st.one_of(
            attr(name, ["eq", "ne"], st.sampled_from(pool)),
            attr(name, ["in"], st.lists(st.sampled_from(pool), min_size=1, max_size=2)),
            attr(name, ["is_set"], st.booleans()),
        )

    def ordered(name, values):
        pair = st.tuples(values, values).map(sorted).map(list)
        return st.one_of(attr(name, ["gte", "lte"], values), attr(name, ["between"], pair))

    def moment(name):
        return st.one_of(
            attr(name, ["within_days"], st.one_of(st.integers(1, 400), st.sampled_from(EDGES))),
            attr(name, ["before", "after"], day),
        )

    day = st.integers(-2, 400).map(
        lambda d: (timezone.localdate(as_of) - timedelta(days=d)).isoformat()
    )
    window = st.sampled_from([None, 30, 90, 365])
    orders = st.builds(
        lambda within, product, measure: {
            k: v
            for k, v in {"within_days": within, "product": product, **measure}.items()
            if v is not None
        },
        window,
        st.sampled_from([None, "面霜", "口红"]),
        st.one_of(
            st.just({}),
            st.just({"none": True}),
            st.builds(lambda n: {"count": {"gte": n}}, st.integers(0, 3)),
            st.builds(lambda n: {"count": {"lte": n}}, st.integers(0, 3)),
            st.builds(lambda a: {"amount": {"gte": a}}, st.sampled_from(AMOUNTS)),
            st.builds(lambda a: {"amount": {"lte": a}}, st.sampled_from(AMOUNTS)),
        ),
    )
    events = st.builds(
        lambda kind, within, properties, measure: {
            k: v
            for k, v in {
                "type": kind,
                "within_days": within,
                "properties": properties or None,
                **measure,
            }.items()
            if v is not None
        },
        st.sampled_from(EVENT_TYPES),
        st.sampled_from([None, 30, 90]),
        st.fixed_dictionaries(
            {},
            optional={key: st.sampled_from(values) for key, values in PROPERTY_VALUES.items()},
        ),
        st.one_of(
            st.just({}),
            st.just({"none": True}),
            st.builds(lambda n: {"at_least": n}, st.integers(1, 3)),
        ),
    )
    tag_list = st.lists(st.sampled_from(tag_ids), min_size=1, max_size=3)
    kinds = [
        categorical("gender", GENDERS),
        categorical("province", PROVINCES),
        categorical("city", CITIES),
        categorical("stage", STAGES),
        categorical("owner", staff_ids),
        categorical("first_channel", ["web", "shop"]),
        categorical("consent_sms", [True, False]),
        attr("birthday_month", ["eq"], st.integers(1, 12)),
        attr("birthday_month", ["in"], st.lists(st.integers(1, 12), min_size=1, max_size=3)),
        st.one_of(ordered("rfm_r", st.integers(1, 5)), attr("rfm_r", ["eq"], st.integers(1, 5))),
        ordered("rfm_monetary", st.integers(0, 2000)),
        ordered("age", st.integers(17, 41)),
        moment("first_seen"),
        moment("first_order"),
        moment("last_order"),
        ordered("p_alive", st.sampled_from(P_ALIVE)),
        ordered("clv_value", st.sampled_from(CLV_VALUES)),
        ordered("clv_purchases_90", st.sampled_from(PURCHASES)),
        ordered("clv_purchases_365", st.sampled_from(PURCHASES)),
        st.builds(
            lambda mode, ts: {"tags": {mode: ts}},
            st.sampled_from(["any", "all", "none"]),
            tag_list,
        ),
        orders.map(lambda spec: {"orders": spec or {"within_days": 365}}),
        orders.map(lambda spec: {"orders": spec or {"within_days": 365}}),
        events.map(lambda spec: {"events": spec}),
        events.map(lambda spec: {"events": spec}),
        st.sampled_from([{"relationship": "active_friend"}, {"relationship": "deleted_us"}]),
    ]
    # sampled_from + flatmap picks a kind uniformly; one_of would favour the first ones.
    return st.sampled_from(kinds).flatmap(lambda kind: kind)


def definition_strategy(leaves, depth: int):
    """Nested all/any/not up to `depth` levels over the leaves."""
    if depth == 0:
        return leaves
    child = definition_strategy(leaves, depth - 1)
    shapes = [
        leaves,
        st.lists(child, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(child, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        child.map(lambda x: {"not": x}),
    ]
    return st.sampled_from(shapes).flatmap(lambda shape: shape)


AMOUNTS = [0, 100, 150, 299.99, 400, 800, 1000, 1100, 1000.5]


def birthday(spec, as_of: datetime) -> date | None:
    """A date, or (years, days) meaning a day off the `years`-th birthday at the as-of day."""
    if not isinstance(spec, tuple):
        return spec
    years, off = spec
    today = timezone.localdate(as_of)
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return day + timedelta(days=off)


def build(rows: dict) -> tuple[list[Customer], list[int], list[int], Data]:
    as_of = rows["as_of"]
    staff = [StaffFactory(), StaffFactory()]
    channels = {code: ChannelFactory(code=code) for code in ("web", "shop")}
    customers = [
        CustomerFactory(
            gender=r["gender"],
            province=r["province"],
            city=r["city"],
            stage=r["stage"],
            rfm_r=r["rfm_r"],
            rfm_monetary=Decimal(r["rfm_monetary"]),
            birthday=birthday(r["birthday"], as_of),
            first_seen_at=as_of - timedelta(days=r["first_seen_days"], hours=r["first_seen_days"]),
            owner=None if r["owner"] is None else staff[r["owner"]],
            first_channel=channels.get(r["channel"]),
            consent_sms=r["consent_sms"],
        )
        for r in rows["customers"]
    ]
    data = Data(as_of=as_of)
    clv = []
    for customer, r in zip(customers, rows["customers"], strict=True):
        if r["clv"] is not None:
            row = {**r["clv"], "value_365": Decimal(str(r["clv"]["value_365"]))}
            clv.append(CustomerClv(customer=customer, **row))
            data.clv[customer.pk] = row
    CustomerClv.objects.bulk_create(clv)
    tags = [TagFactory() for _ in range(3)]
    for ci, ti in set(rows["tag_links"]):
        if ci < len(customers):
            CustomerTag.objects.create(customer=customers[ci], tag=tags[ti], source="manual")
            data.tags.setdefault(customers[ci].pk, set()).add(tags[ti].pk)
    shop = ChannelFactory(code="tmall")

    def ago(days):
        return None if days is None else as_of - timedelta(days=days, minutes=7)

    for r in rows["orders"]:
        if r["customer"] >= len(customers):
            continue
        customer = customers[r["customer"]]
        amount = Decimal(r["amount"])
        refund = (amount * Decimal(str(r["refund_share"]))).quantize(Decimal("0.01"))
        paid_at, placed_at = ago(r["paid_days"]), ago(r["placed_days"])
        made = Order.objects.create(
            channel=shop,
            external_id=f"P{next(_refs)}",
            customer=customer,
            status=r["status"],
            amount=amount,
            refund_amount=refund,
            paid_at=paid_at,
            placed_at=placed_at,
        )
        for title in r["titles"]:
            OrderItem.objects.create(order=made, title=title)
        data.orders.setdefault(customer.pk, []).append(
            {
                "status": r["status"],
                "amount": amount,
                "refund": refund,
                "paid_time": paid_at or placed_at,
                "titles": r["titles"],
            }
        )
    events = []
    for r in rows["events"]:
        if r["customer"] >= len(customers):
            continue
        customer = customers[r["customer"]]
        at = as_of - timedelta(days=r["days"], minutes=r["minutes"])
        events.append(
            Event(customer=customer, type=r["type"], occurred_at=at, properties=r["properties"])
        )
        data.events.setdefault(customer.pk, []).append(
            {"type": r["type"], "at": at, "properties": r["properties"]}
        )
    Event.objects.bulk_create(events)
    seen = set()
    for ci, si, (status, removed_by) in rows["relationships"]:
        if ci >= len(customers) or (ci, si) in seen:
            continue
        seen.add((ci, si))
        Relationship.objects.create(
            customer=customers[ci],
            staff=staff[si],
            added_at=as_of,
            status=status,
            removed_by=removed_by,
        )
        data.relationships.setdefault(customers[ci].pk, []).append((status, removed_by))
    return customers, [t.pk for t in tags], [s.pk for s in staff], data


class SegmentPropertyTests(TestCase):
    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=dataset, draw=st.data())
    def test_sql_agrees_with_python(self, rows, draw):
        # given a random dataset, and several random definitions over its tags and staff
        customers, tag_ids, staff_ids, data = build(rows)
        leaves = leaf_strategy(tag_ids, staff_ids, data.as_of)
        definitions = draw.draw(
            st.lists(definition_strategy(leaves, 3), min_size=6, max_size=6), label="definitions"
        )
        fresh = Customer.objects.select_related("first_channel").filter(
            pk__in=[c.pk for c in customers]
        )
        for definition in definitions:
            # when compiled to SQL
            got = members(definition, as_of=data.as_of)
            # then it selects exactly whom the plain evaluator selects
            expected = {c.pk for c in fresh if evaluate_in_python(definition, c, data)}
            assert got == expected, definition
