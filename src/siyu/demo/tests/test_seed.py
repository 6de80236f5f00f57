from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from siyu.core.models import AuditLog
from siyu.customers.identifiers import normalize_phone
from siyu.customers.models import Customer, Identity, MergeRecord, Relationship
from siyu.demo.data import DEMO_PASSWORD
from siyu.org.models import Staff

SEED_ARGS = ("--customers", "300", "--today", "2025-06-30")


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed", *SEED_ARGS, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return _seed()


def _fingerprint() -> tuple:
    """What a seed produced, apart from ids (which a database never hands out twice)."""
    fields = ("name", "gender", "birthday", "province", "city", "first_seen_at", "stage")
    people = sorted(Customer.objects.live().values_list(*fields), key=repr)
    kinds = Counter(Identity.objects.values_list("kind", flat=True))
    relationships = Counter(Relationship.objects.values_list("status", "removed_by"))
    return people, kinds, relationships, MergeRecord.objects.count()


def test_seeding_twice_with_the_same_seed_gives_the_same_data(seeded):
    # given a seeded database and what it holds
    first = _fingerprint()
    # when the customers are removed and the same seed runs again
    MergeRecord.objects.all().delete()
    Customer.objects.update(merged_into=None)
    Customer.objects.all().delete()
    _seed()
    # then the same people, identities and relationships are back
    assert _fingerprint() == first
    assert len(first[0]) == 300


def test_seeded_phones_are_valid_and_match_the_customer(seeded):
    # given a seeded database
    phones = Identity.objects.filter(kind=Identity.Kind.PHONE)
    # then every phone identity is a valid mainland mobile, stored as resolution stores it
    assert phones.count() > 150
    assert all(normalize_phone(value) == value for value in phones.values_list("value", flat=True))
    # and a customer's primary phone is one of their phone identities
    for customer in Customer.objects.live().exclude(phone=""):
        assert phones.filter(customer=customer, value=customer.phone).exists()
        assert customer.phone_tail == customer.phone[-4:]


def test_split_people_are_merged_by_resolution(seeded):
    # given a seeded database, where 1 in 100 people arrived twice
    merges = MergeRecord.objects.select_related("survivor", "absorbed")
    # then resolution merged them, leaving tombstones that point at live customers
    assert merges.count() == 3
    assert AuditLog.objects.filter(action=AuditLog.Action.MERGE).count() == 3
    for merge in merges:
        assert merge.absorbed.merged_into_id == merge.survivor_id
        assert merge.survivor.is_live
    assert Customer.objects.live().count() == 300
    # and every identity and relationship belongs to a live customer
    assert not Identity.objects.filter(customer__merged_into__isnull=False).exists()
    assert not Relationship.objects.filter(customer__merged_into__isnull=False).exists()


def test_some_friends_deleted_their_advisor(seeded):
    # given a seeded database
    removed = Relationship.objects.filter(status=Relationship.Status.REMOVED)
    # then a few relationships ended, by the customer mostly, each after it began
    assert 0 < removed.count() < Relationship.objects.count() * 0.15
    assert removed.filter(removed_by=Relationship.RemovedBy.CUSTOMER).exists()
    assert all(r.added_at <= r.removed_at for r in removed)


def test_demo_logins_exist_with_their_roles(seeded):
    # given a seeded database
    users = get_user_model().objects
    admin = users.get(username="admin")
    # then admin may use Django admin and sees full phone numbers
    assert admin.is_staff and admin.is_superuser
    assert admin.staff.role == Staff.Role.ADMIN and admin.staff.sees_full_pii
    # and each store has one manager; managers and staff see masked phones
    managers = Staff.objects.filter(role=Staff.Role.MANAGER)
    assert sorted(managers.values_list("user__username", flat=True)) == [
        f"manager{i:02d}" for i in range(1, 6)
    ]
    assert managers.values("store").distinct().count() == 5
    staff = Staff.objects.filter(role=Staff.Role.STAFF)
    assert staff.count() == 34 and staff.filter(user__username="staff34").exists()
    assert not Staff.objects.exclude(role=Staff.Role.ADMIN).filter(can_view_pii=True).exists()
    # and every login has the demo password and a persona
    assert users.get(username="staff01").check_password(DEMO_PASSWORD)
    assert not Staff.objects.filter(nickname="").exists()
    assert not Staff.objects.filter(wecom_userid=None).exists()


def test_seed_refuses_a_database_with_customers(seeded):
    # given a seeded database
    # when seeding again without --force
    # then it refuses and says how to go on
    with pytest.raises(CommandError, match="already has 303 customers"):
        _seed()


def test_if_empty_skips_a_database_with_customers(seeded):
    # given a seeded database
    # when seeding with --if-empty
    out = _seed("--if-empty")
    # then nothing is added
    assert "skipped" in out
    assert Customer.objects.count() == 303


def test_force_appends_without_clashing_identifiers(seeded):
    # given a seeded database
    # when the same seed is appended with --force
    _seed("--force")
    # then the new customers get identifiers of their own, and the demo logins are reused
    assert Customer.objects.live().count() == 600
    assert Staff.objects.count() == 40
    assert MergeRecord.objects.count() == 6
