"""A merge keeps each snapshot's members unique: the survivor appears once per snapshot."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.models import SegmentSnapshot, SnapshotMember
from siyu.segments.services import merge_snapshot_members


def snapshot(*customers) -> SegmentSnapshot:
    frozen = SegmentSnapshot.objects.create(name="s", definition={}, size=len(customers))
    SnapshotMember.objects.bulk_create(
        SnapshotMember(snapshot=frozen, customer=c) for c in customers
    )
    return frozen


def members(frozen: SegmentSnapshot) -> list[int]:
    return sorted(frozen.members.values_list("customer_id", flat=True))


@pytest.mark.django_db
def test_merge_leaves_the_survivor_once_in_every_snapshot_that_held_any_of_them():
    survivor, b, c, other = CustomerFactory.create_batch(4)
    all_three, both_absorbed, only_c, unrelated = (
        snapshot(survivor, b, c),
        snapshot(b, c, other),
        snapshot(c),
        snapshot(other),
    )
    customers_merge(survivor=survivor, absorbed=[b, c])
    assert members(all_three) == [survivor.pk]
    assert members(both_absorbed) == sorted([survivor.pk, other.pk])
    assert members(only_c) == [survivor.pk]
    assert members(unrelated) == [other.pk]


@pytest.mark.django_db
def test_settling_snapshots_takes_the_same_queries_however_many_snapshots():
    survivor, b, c = CustomerFactory.create_batch(3)
    snapshot(b, c)
    with CaptureQueriesContext(connection) as few:
        merge_snapshot_members(survivor.pk, [b.pk, c.pk])
    for _ in range(5):
        snapshot(b, c)
    with CaptureQueriesContext(connection) as many:
        merge_snapshot_members(survivor.pk, [b.pk, c.pk])
    assert len(many) == len(few)
    assert SnapshotMember.objects.filter(customer__in=[b, c]).count() == 6
