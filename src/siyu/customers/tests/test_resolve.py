from datetime import UTC, datetime

import pytest

from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer, Identity, MergeRecord, Relationship
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory, RelationshipFactory
from siyu.org.tests.factories import StaffFactory

JAN, MAR = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)


def test_a_new_person_is_created_with_identities_attributes_and_source(db):
    tmall = ChannelFactory(code="tmall", name="天猫")
    result = customer_resolve(
        identifiers=[("phone", "13812341234"), ("tmall_buyer", "tb-1")],
        attributes={"name": "李娜", "gender": "女", "birthday": "1990-04-01", "city": "杭州"},
        channel=tmall,
        seen_at=JAN,
    )
    customer = result.customer
    assert result.created
    assert (customer.name, customer.gender, str(customer.birthday)) == ("李娜", "f", "1990-04-01")
    assert (customer.name_pinyin, customer.name_initials) == ("lina", "ln")
    assert (customer.phone, customer.phone_tail) == ("+8613812341234", "1234")
    assert customer.first_channel == tmall and customer.first_seen_at == JAN
    assert set(customer.identities.values_list("kind", flat=True)) == {"phone", "tmall_buyer"}


def test_a_known_person_gets_new_identifiers_and_only_empty_attributes_filled(db):
    first = customer_resolve(identifiers=[("phone", "13812341234")], attributes={"name": "李娜"})
    again = customer_resolve(
        identifiers=[("phone", "13812341234"), ("email", "NA@example.com")],
        attributes={"name": "Nina", "city": "杭州"},
    )
    customer = Customer.objects.get(pk=first.customer.pk)
    assert again.customer.pk == customer.pk and not again.created
    assert (customer.name, customer.city) == ("李娜", "杭州")
    assert customer.identities.filter(kind="email", value="na@example.com").exists()


def test_an_identifier_linking_two_people_merges_them_and_moves_everything(db):
    jd, douyin = ChannelFactory(code="jd"), ChannelFactory(code="douyin")
    staff_a, staff_b = StaffFactory(), StaffFactory()
    older = customer_resolve(
        identifiers=[("jd_buyer", "jd-1")], attributes={"name": "王芳"}, channel=jd, seen_at=JAN
    ).customer
    newer = customer_resolve(
        identifiers=[("phone", "13912345678")],
        attributes={"city": "成都"},
        channel=douyin,
        seen_at=MAR,
    ).customer
    RelationshipFactory(customer=older, staff=staff_a, added_at=MAR)
    RelationshipFactory(customer=newer, staff=staff_a, added_at=JAN, remark="老客户")
    RelationshipFactory(customer=newer, staff=staff_b, added_at=MAR)

    result = customer_resolve(identifiers=[("phone", "13912345678"), ("jd_buyer", "jd-1")])

    survivor = Customer.objects.get(pk=older.pk)
    tombstone = Customer.objects.get(pk=newer.pk)
    assert result.customer.pk == survivor.pk and result.merged_ids == [newer.pk]
    assert tombstone.merged_into_id == survivor.pk
    assert (survivor.name, survivor.city, survivor.phone) == ("王芳", "成都", "+8613912345678")
    assert survivor.first_channel == jd and survivor.first_seen_at == JAN
    assert Identity.objects.filter(customer=tombstone).count() == 0
    # One relationship per staff member survives: the earliest, with what the others knew.
    rels = {r.staff_id: r for r in Relationship.objects.filter(customer=survivor)}
    assert set(rels) == {staff_a.pk, staff_b.pk}
    assert (rels[staff_a.pk].added_at, rels[staff_a.pk].remark) == (JAN, "老客户")
    record = MergeRecord.objects.get(absorbed=tombstone)
    assert record.survivor == survivor
    # The absorbed side held the earlier staff_a friendship, so both its relationships moved.
    assert record.moved == {"customers.identity": 1, "customers.relationship": 2}
    assert record.absorbed_snapshot["city"] == "成都"
    assert AuditLog.objects.filter(action="merge", target_id=str(survivor.pk)).exists()


def test_the_earliest_record_survives_even_when_seen_later(db):
    late = customer_resolve(identifiers=[("phone", "13912345678")], seen_at=MAR).customer
    early = customer_resolve(identifiers=[("tmall_buyer", "tb")], seen_at=JAN).customer
    result = customer_resolve(identifiers=[("tmall_buyer", "tb"), ("phone", "13912345678")])
    assert result.customer.pk == early.pk
    assert Customer.objects.get(pk=late.pk).merged_into_id == early.pk


@pytest.mark.parametrize(
    ("identifiers", "attributes", "message"),
    [
        ([], {}, "at least one identifier"),
        ([("phone", "138****1234")], {}, "masked"),
        ([("qq", "1")], {}, "unknown identity kind"),
        ([("email", "nope")], {}, "not an e-mail"),
        ([("phone", "13812341234")], {"salary": 1}, "unknown customer attribute"),
        ([("phone", "13812341234")], {"birthday": "31/02/1990"}, "not a date"),
        ([("phone", "13812341234")], {"gender": "x"}, "gender"),
        ([("phone", "13812341234")], {"name": "名" * 101}, "longer than"),
    ],
)
def test_bad_input_is_rejected_and_writes_nothing(db, identifiers, attributes, message):
    with pytest.raises(DomainError, match=message):
        customer_resolve(identifiers=identifiers, attributes=attributes)
    assert Customer.objects.count() == 0 and Identity.objects.count() == 0


def test_names_with_markup_and_sql_metacharacters_are_stored_verbatim(db):
    name = "<script>x</script>'; DROP TABLE customers_customer; --"[:100]
    customer = customer_resolve(identifiers=[("phone", "13812341234")], attributes={"name": name})
    assert Customer.objects.get(pk=customer.customer.pk).name == name
