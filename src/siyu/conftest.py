"""Fixtures shared by every app's tests: an organisation with one person per role."""

from dataclasses import dataclass

import pytest

from siyu.org.models import Staff, Store
from siyu.org.tests.factories import PASSWORD, StaffFactory, StoreFactory


@dataclass
class Org:
    store_a: Store
    store_b: Store
    admin: Staff
    manager_a: Staff
    manager_b: Staff
    staff_a: Staff
    staff_a2: Staff
    staff_b: Staff


@pytest.fixture
def org(db) -> Org:
    """Two stores; store A has a manager and two staff, store B a manager and one staff."""
    store_a, store_b = StoreFactory(name="静安店"), StoreFactory(name="徐汇店")
    return Org(
        store_a=store_a,
        store_b=store_b,
        admin=StaffFactory(role=Staff.Role.ADMIN, store=None, user__username="admin"),
        manager_a=StaffFactory(role=Staff.Role.MANAGER, store=store_a, user__username="mgr_a"),
        manager_b=StaffFactory(role=Staff.Role.MANAGER, store=store_b, user__username="mgr_b"),
        staff_a=StaffFactory(store=store_a, user__username="staff_a"),
        staff_a2=StaffFactory(store=store_a, user__username="staff_a2"),
        staff_b=StaffFactory(store=store_b, user__username="staff_b"),
    )


@pytest.fixture
def login(client):
    """Log the test client in as a staff member: `login(org.staff_a)`."""

    def _login(staff: Staff):
        client.logout()
        assert client.login(username=staff.user.username, password=PASSWORD)
        return client

    return _login
