"""Assigning and removing tags: set-based, idempotent, recorded, exclusive groups, merges."""

import pytest

from siyu.core.errors import DomainError
from siyu.customers.models import Identity
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import CustomerFactory
from siyu.tags.models import CustomerTag, Source, TagChange
from siyu.tags.services import (
    tag_create,
    tag_delete,
    tag_group_create,
    tags_assign,
    tags_remove,
)
from siyu.tags.tests.factories import TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def history(customer) -> list[tuple[str, str]]:
    return list(
        TagChange.objects.filter(customer=customer).order_by("id").values_list("tag_name", "action")
    )


def test_assign_then_remove_keeps_history(org):
    # given two customers and a tag
    a, b = CustomerFactory(), CustomerFactory()
    tag = TagFactory(name="母婴")
    # when the tag is put on both, then taken off one
    added = tags_assign(
        customer_ids=[a.pk, b.pk], tag=tag, source=Source.MANUAL, user=org.admin.user
    )
    removed = tags_remove(customer_ids=[a.pk], tag=tag, source=Source.MANUAL, user=None)
    # then
    assert (added, removed) == (2, 1)
    assert list(CustomerTag.objects.values_list("customer_id", flat=True)) == [b.pk]
    link = CustomerTag.objects.get()
    assert (link.source, link.added_by_id) == ("manual", org.admin.user.pk)
    assert history(a) == [("母婴", "added"), ("母婴", "removed")]
    assert history(b) == [("母婴", "added")]


def test_reassign_adds_nothing(org):
    a = CustomerFactory()
    tag = TagFactory()
    tags_assign(customer_ids=[a.pk], tag=tag, source=Source.IMPORT)
    assert tags_assign(customer_ids=[a.pk, a.pk], tag=tag, source=Source.IMPORT) == 0
    assert CustomerTag.objects.count() == 1
    assert TagChange.objects.count() == 1
    assert tags_remove(customer_ids=[CustomerFactory().pk], tag=tag, source=Source.MANUAL) == 0


def test_exclusive_group_replaces_the_other_tag():
    group = TagGroupFactory(exclusive=True)
    small, large = TagFactory(group=group, name="小码"), TagFactory(group=group, name="大码")
    elsewhere = TagFactory()
    a, b = CustomerFactory(), CustomerFactory()
    tags_assign(customer_ids=[a.pk], tag=small, source=Source.MANUAL)
    tags_assign(customer_ids=[a.pk], tag=elsewhere, source=Source.MANUAL)
    # when a and b get the other tag of the exclusive group
    assert tags_assign(customer_ids=[a.pk, b.pk], tag=large, source=Source.RULE) == 2
    # then a lost the first one, recorded, and kept the tag of another group
    assert set(CustomerTag.objects.filter(customer=a).values_list("tag__name", flat=True)) == {
        "大码",
        elsewhere.name,
    }
    assert ("小码", "removed") in history(a)


def test_non_exclusive_group_keeps_both():
    group = TagGroupFactory(exclusive=False)
    one, two = TagFactory(group=group), TagFactory(group=group)
    a = CustomerFactory()
    tags_assign(customer_ids=[a.pk], tag=one, source=Source.MANUAL)
    tags_assign(customer_ids=[a.pk], tag=two, source=Source.MANUAL)
    assert CustomerTag.objects.filter(customer=a).count() == 2


def test_merge_keeps_one_assignment_per_tag_the_earliest():
    # given two customers, each with the same tag, and one with another tag
    first = customer_resolve(identifiers=[("phone", "13800000001")]).customer
    second = customer_resolve(identifiers=[("email", "a@example.com")]).customer
    shared, own = TagFactory(), TagFactory()
    tags_assign(customer_ids=[second.pk], tag=shared, source=Source.WECOM)
    tags_assign(customer_ids=[first.pk], tag=shared, source=Source.MANUAL)
    tags_assign(customer_ids=[second.pk], tag=own, source=Source.MANUAL)
    # when one identifier set names both, they merge
    survivor = customer_resolve(
        identifiers=[("phone", "13800000001"), ("email", "a@example.com")]
    ).customer
    # then the survivor has each tag once; the shared one is the earliest (from WeCom)
    links = CustomerTag.objects.filter(customer=survivor)
    assert sorted(links.values_list("tag_id", flat=True)) == sorted([shared.pk, own.pk])
    assert links.get(tag=shared).source == "wecom"
    assert CustomerTag.objects.count() == 2
    assert TagChange.objects.filter(customer=survivor).count() == 3
    assert Identity.objects.filter(customer=survivor).count() == 2


def test_bad_input_is_a_domain_error():
    tag = TagFactory()
    with pytest.raises(DomainError):
        tags_assign(customer_ids=["x"], tag=tag, source=Source.MANUAL)
    with pytest.raises(DomainError):
        tags_assign(customer_ids=[1], tag=tag, source="guess")
    with pytest.raises(DomainError):
        tags_assign(customer_ids=range(100_001), tag=tag, source=Source.MANUAL)
    with pytest.raises(DomainError):
        tag_group_create(name="x" * 51, dimension="basic")
    with pytest.raises(DomainError):
        tag_group_create(name="ok", dimension="mood")
    with pytest.raises(DomainError):
        tag_create(group=tag.group, name=tag.name)
    with pytest.raises(DomainError):
        tag_create(group=tag.group, name="red", colour="red")


def test_deleting_a_tag_removes_assignments_and_records_it(org):
    a, b = CustomerFactory(), CustomerFactory()
    tag, other = TagFactory(name="过期"), TagFactory()
    tags_assign(customer_ids=[a.pk, b.pk], tag=tag, source=Source.MANUAL)
    tags_assign(customer_ids=[a.pk], tag=other, source=Source.MANUAL)
    assert tag_delete(tag=tag, user=org.admin.user) == 2
    assert list(CustomerTag.objects.values_list("tag_id", flat=True)) == [other.pk]
    assert ("过期", "removed") in history(a)
    removal = TagChange.objects.get(customer=b, action="removed")
    assert (removal.tag_id, removal.by_id) == (None, org.admin.user.pk)
    assert TagChange.objects.filter(tag_name="过期", tag__isnull=False).count() == 0


def test_bulk_assign_over_many_customers_is_set_based(django_assert_max_num_queries):
    customers = CustomerFactory.create_batch(30)
    tag = TagFactory()
    with django_assert_max_num_queries(12):
        added = tags_assign(customer_ids=[c.pk for c in customers], tag=tag, source=Source.IMPORT)
    assert added == 30
    with django_assert_max_num_queries(12):
        assert tags_remove(customer_ids=[c.pk for c in customers], tag=tag, source="import") == 30
