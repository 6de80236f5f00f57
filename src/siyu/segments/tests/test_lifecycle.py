from datetime import timedelta

import pytest

from siyu.commerce.models import Order
from siyu.customers.models import Customer, MergeRecord
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import CustomerFactory, RelationshipFactory
from siyu.org.tests.factories import StaffFactory
from siyu.segments.models import StageChange
from siyu.segments.services import stages_recompute
from siyu.segments.tests.helpers import AS_OF, days_ago, order

pytestmark = pytest.mark.django_db
Stage = Customer.Stage
SECOND = 1 / 86400


def stage_of(customer: Customer) -> str:
    customer.refresh_from_db()
    return customer.stage


def friend(customer: Customer, *, days: float = 100, active: bool = True):
    return RelationshipFactory(
        customer=customer,
        staff=StaffFactory(),
        added_at=days_ago(days),
        status="active" if active else "removed",
    )


def test_each_stage_from_lead_to_repeat():
    lead, contact, engaged, first, repeat = (CustomerFactory() for _ in range(5))
    friend(contact, days=100)
    friend(engaged, days=3)
    order(first, days=10)
    order(repeat, days=10)
    order(repeat, days=20, status=Order.Status.SHIPPED)

    counts = stages_recompute(as_of=AS_OF)

    assert [stage_of(c) for c in (lead, contact, engaged, first, repeat)] == [
        Stage.LEAD,
        Stage.CONTACT,
        Stage.ENGAGED,
        Stage.FIRST_PURCHASE,
        Stage.REPEAT,
    ]
    assert counts == {
        ("lead", "contact"): 1,
        ("lead", "engaged"): 1,
        ("lead", "first_purchase"): 1,
        ("lead", "repeat"): 1,
    }


def test_an_order_placed_but_not_paid_makes_a_customer_engaged_not_a_buyer():
    customer = CustomerFactory()
    order(customer, days=5, status=Order.Status.PENDING)
    stages_recompute(as_of=AS_OF)
    assert stage_of(customer) == Stage.ENGAGED


def test_engaged_window_is_inclusive(settings):
    settings.SIYU_ENGAGED_DAYS = 30
    inside, outside = CustomerFactory(), CustomerFactory()
    friend(inside, days=30)
    friend(outside, days=30 + SECOND)
    stages_recompute(as_of=AS_OF)
    assert (stage_of(inside), stage_of(outside)) == (Stage.ENGAGED, Stage.CONTACT)


def test_a_removed_friend_is_no_longer_a_contact():
    customer = CustomerFactory(stage=Stage.CONTACT)
    friend(customer, days=100, active=False)
    stages_recompute(as_of=AS_OF)
    assert stage_of(customer) == Stage.LEAD


def test_at_risk_and_lost_at_their_thresholds(settings):
    settings.SIYU_AT_RISK_DAYS, settings.SIYU_LOST_DAYS = 180, 365
    ages = [180, 180 + SECOND, 365, 365 + SECOND]
    customers = [CustomerFactory() for _ in ages]
    for customer, age in zip(customers, ages, strict=True):
        order(customer, days=age)

    stages_recompute(as_of=AS_OF)

    assert [stage_of(c) for c in customers] == [
        Stage.FIRST_PURCHASE,
        Stage.AT_RISK,
        Stage.AT_RISK,
        Stage.LOST,
    ]


def test_a_new_purchase_brings_a_lost_customer_back():
    customer = CustomerFactory()
    order(customer, days=400)
    stages_recompute(as_of=AS_OF)
    assert stage_of(customer) == Stage.LOST

    order(customer, days=1)
    counts = stages_recompute(as_of=AS_OF)

    assert stage_of(customer) == Stage.REPEAT
    assert counts == {("lost", "repeat"): 1}


def test_transitions_are_recorded_once_and_rerunning_changes_nothing():
    customer = CustomerFactory()
    order(customer, days=2)
    stages_recompute(as_of=AS_OF)

    assert stages_recompute(as_of=AS_OF) == {}
    assert stages_recompute(as_of=AS_OF + timedelta(hours=1)) == {}
    change = StageChange.objects.get()
    assert (change.customer, change.from_stage, change.to_stage, change.at) == (
        customer,
        Stage.LEAD,
        Stage.FIRST_PURCHASE,
        AS_OF,
    )


def test_members_keep_their_stage():
    member = CustomerFactory(stage=Stage.MEMBER)
    order(member, days=400)
    assert stages_recompute(as_of=AS_OF) == {}
    assert stage_of(member) == Stage.MEMBER


def test_a_merge_moves_stage_changes_to_the_survivor():
    survivor, absorbed = CustomerFactory(), CustomerFactory()
    order(absorbed, days=2)
    stages_recompute(as_of=AS_OF)

    customers_merge(survivor=survivor, absorbed=[absorbed])

    assert list(StageChange.objects.values_list("customer_id", flat=True)) == [survivor.pk]
    assert MergeRecord.objects.get(absorbed=absorbed).moved["segments.stagechange"] == 1
    # The survivor now owns the order; tombstones are left alone.
    assert stages_recompute(as_of=AS_OF) == {("lead", "first_purchase"): 1}
    assert StageChange.objects.filter(customer=absorbed).count() == 0


def test_the_on_demand_tasks_run_the_services():
    from siyu.segments.tasks import rfm_recompute_task, stages_recompute_task

    order(CustomerFactory(), days=1)

    # Tests run Huey immediately: calling a task runs it and returns a result handle.
    assert stages_recompute_task().get() == 1
    assert sum(rfm_recompute_task().get().values()) == 1
