"""The one data scope: staff see their own, managers their store, admins all."""

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from siyu.customers.selectors import customer_get, customers_visible_to, pool_stats
from siyu.customers.tests.factories import CustomerFactory, RelationshipFactory
from siyu.org.models import Staff
from siyu.org.selectors import viewer_for
from siyu.org.tests.factories import StaffFactory, UserFactory


@pytest.fixture
def pool(org):
    """Customers owned in store A, owned in store B, and one of B befriended by staff_a."""
    own_a = CustomerFactory(owner=org.staff_a)
    own_a2 = CustomerFactory(owner=org.staff_a2)
    own_b = CustomerFactory(owner=org.staff_b)
    friend = CustomerFactory(owner=org.staff_b)
    RelationshipFactory(customer=friend, staff=org.staff_a)
    return {"own_a": own_a, "own_a2": own_a2, "own_b": own_b, "friend": friend}


def visible(staff: Staff) -> set[int]:
    return set(customers_visible_to(viewer_for(staff.user)).values_list("pk", flat=True))


def ids(pool, *names) -> set[int]:
    return {pool[n].pk for n in names}


def test_staff_see_the_customers_they_own_or_befriended(org, pool):
    assert visible(org.staff_a) == ids(pool, "own_a", "friend")
    assert visible(org.staff_a2) == ids(pool, "own_a2")
    assert visible(org.staff_b) == ids(pool, "own_b", "friend")


def test_managers_see_their_store_including_friends_of_its_staff(org, pool):
    assert visible(org.manager_a) == ids(pool, "own_a", "own_a2", "friend")
    assert visible(org.manager_b) == ids(pool, "own_b", "friend")


def test_admins_and_superusers_see_everyone(org, pool):
    everyone = ids(pool, "own_a", "own_a2", "own_b", "friend")
    assert visible(org.admin) == everyone
    superuser = UserFactory(is_superuser=True)
    assert set(customers_visible_to(viewer_for(superuser)).values_list("pk", flat=True)) == everyone


def test_logins_without_staff_and_resigned_staff_see_nothing(org, pool):
    assert visible(StaffFactory(status=Staff.Status.RESIGNED, store=org.store_a)) == set()
    assert not customers_visible_to(viewer_for(UserFactory())).exists()


def test_out_of_scope_and_unknown_ids_both_raise_404(org, pool):
    viewer = viewer_for(org.staff_a.user)
    assert customer_get(viewer, pool["own_a"].pk) == pool["own_a"]
    for pk in (pool["own_b"].pk, 10**9, "abc", None):
        with pytest.raises(Http404):
            customer_get(viewer, pk)


def test_a_tombstone_id_opens_its_survivor(org, pool):
    tomb = CustomerFactory(owner=org.staff_a, merged_into=pool["own_a"])
    viewer = viewer_for(org.staff_a.user)
    assert customer_get(viewer, tomb.pk) == pool["own_a"]
    assert tomb.pk not in visible(org.staff_a)


def test_pool_stats_count_only_the_viewers_scope(org, pool):
    now = timezone.now()
    CustomerFactory(owner=org.staff_a, first_seen_at=now - timedelta(days=10))
    RelationshipFactory(
        customer=pool["own_a"],
        staff=org.staff_a,
        status="removed",
        removed_by="customer",
        removed_at=now,
    )
    mine = pool_stats(viewer_for(org.staff_a.user))
    assert (mine.size, mine.new_today, mine.new_30d) == (3, 2, 3)
    assert (mine.removed_today, mine.removed_30d) == (1, 1)
    theirs = pool_stats(viewer_for(org.staff_b.user))
    assert (theirs.size, theirs.removed_30d) == (2, 0)
    assert pool_stats(viewer_for(org.admin.user)).size == 5
