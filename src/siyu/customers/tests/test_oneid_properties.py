"""OneID invariants under any sequence of resolutions (Hypothesis), on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from siyu.customers.models import Customer, Identity, MergeRecord, Relationship
from siyu.customers.services import customer_resolve
from siyu.org.tests.factories import StaffFactory

POOL = [
    ("phone", "+8613800000001"),
    ("phone", "+8613800000002"),
    ("phone", "+8613800000003"),
    ("email", "a@example.com"),
    ("email", "b@example.com"),
    ("tmall_buyer", "tb-1"),
    ("tmall_buyer", "tb-2"),
    ("wechat_unionid", "u-1"),
    ("wecom_external_userid", "wm-1"),
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

step = st.fixed_dictionaries(
    {
        "idents": st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True),
        "day": st.integers(min_value=0, max_value=30),
        "befriend": st.one_of(st.none(), st.integers(min_value=0, max_value=2)),
    }
)


def owner_of(kind: str, value: str) -> Customer:
    return Identity.objects.select_related("customer").get(kind=kind, value=value).customer


class OneIdPropertyTests(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(step, min_size=1, max_size=8))
    def test_resolution_invariants(self, steps):
        staff = [StaffFactory() for _ in range(3)]
        given_idents: set[tuple[str, str]] = set()
        friendships: set[tuple[int, tuple[str, str]]] = set()
        earliest: dict[tuple[str, str], datetime] = {}

        for s in steps:
            seen_at = T0 + timedelta(days=s["day"])
            result = customer_resolve(identifiers=s["idents"], seen_at=seen_at)
            given_idents.update(s["idents"])
            for ident in s["idents"]:
                earliest[ident] = min(earliest.get(ident, seen_at), seen_at)
            # Every identifier of one input ends at the one customer returned.
            assert {owner_of(*i).pk for i in s["idents"]} == {result.customer.pk}
            if s["befriend"] is not None:
                Relationship.objects.get_or_create(
                    customer=result.customer,
                    staff=staff[s["befriend"]],
                    defaults={"added_at": seen_at},
                )
                friendships.add((staff[s["befriend"]].pk, s["idents"][0]))

        # Every identity given exists once and belongs to a live customer.
        stored = list(Identity.objects.values_list("kind", "value", "customer__merged_into"))
        assert {(k, v) for k, v, _ in stored} == given_idents
        assert len(stored) == len(given_idents)
        assert all(merged_into is None for _, _, merged_into in stored)

        # No relationship was lost by a merge: each friend still follows the person.
        for staff_id, ident in friendships:
            assert Relationship.objects.filter(
                staff_id=staff_id, customer=owner_of(*ident)
            ).exists()

        # Tombstones resolve to a live customer in one hop, each with a merge record.
        for tomb in Customer.objects.filter(merged_into__isnull=False).select_related(
            "merged_into"
        ):
            assert tomb.merged_into.merged_into_id is None
            assert MergeRecord.objects.filter(absorbed=tomb).exists()

        # The survivor keeps the earliest first-seen time of everyone it absorbed.
        for ident, first in earliest.items():
            assert owner_of(*ident).first_seen_at <= first

        # Resolving the same input again changes nothing.
        before = (Customer.objects.count(), Identity.objects.count(), MergeRecord.objects.count())
        last = steps[-1]["idents"]
        again = customer_resolve(identifiers=last, seen_at=T0 + timedelta(days=31))
        after = (Customer.objects.count(), Identity.objects.count(), MergeRecord.objects.count())
        assert after == before
        assert not again.created and not again.merged_ids and not again.attached
