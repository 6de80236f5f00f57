import pytest

from siyu.core.errors import DomainError
from siyu.org.models import Staff
from siyu.org.services import staff_create
from siyu.org.tests.factories import StoreFactory


def test_admins_may_open_the_django_admin_and_staff_may_not(client, db):
    store = StoreFactory()
    staff_create(username="boss", password="pw-123456", name="老板", role="admin")
    staff_create(username="clerk", password="pw-123456", name="导购", store=store)

    client.login(username="boss", password="pw-123456")
    assert client.get("/admin/").status_code == 200
    client.login(username="clerk", password="pw-123456")
    assert client.get("/admin/").status_code == 302


def test_new_staff_get_the_default_friend_cap_and_a_persona(db, settings):
    staff = staff_create(
        username="s1", password=None, name="林", store=StoreFactory(), nickname="林小美"
    )
    assert staff.friend_cap == settings.SIYU_FRIEND_CAP_DEFAULT == 5000
    assert str(staff) == "林小美"
    assert not staff.sees_full_pii


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "owner"}, "unknown role"),
        ({"role": Staff.Role.MANAGER}, "needs a store"),
        ({"username": "taken"}, "is taken"),
    ],
)
def test_bad_staff_input_is_refused(db, kwargs, message):
    staff_create(username="taken", password=None, name="x")
    with pytest.raises(DomainError, match=message):
        staff_create(**{"username": "new", "password": None, "name": "y", **kwargs})
