"""The tag pages: roles, scope, bounded queries, bulk tagging of the list's selection, bad input."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.customers.tests.factories import CustomerFactory, RelationshipFactory
from siyu.tags.models import CustomerTag, Source, Tag, TagChange, TagGroup
from siyu.tags.services import tags_assign
from siyu.tags.tests.factories import TagFactory, TagGroupFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def add_url(customer) -> str:
    return reverse("tags:customer_add", args=[customer.pk])


def remove_url(customer, tag) -> str:
    return reverse("tags:customer_remove", args=[customer.pk, tag.pk])


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


# The catalogue


@pytest.mark.parametrize("who", ["admin", "manager_a"])
def test_catalogue_opens_for_leads(org, login, who):
    tag = TagFactory(name="高净值", group__name="价值分层", description="年消费过万")
    response = login(getattr(org, who)).get(reverse("tags:index"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "价值分层" in content and "高净值" in content and "年消费过万" in content
    assert tag.colour in content
    assert 'href="/tags/"' in content  # the navigation area


def test_catalogue_is_404_for_staff(org, login):
    client = login(org.staff_a)
    assert client.get(reverse("tags:index")).status_code == 404
    assert client.post(reverse("tags:group_create"), {"name": "x"}).status_code == 404
    assert 'href="/tags/"' not in client.get(reverse("customers:list")).content.decode()


def test_catalogue_counts_members_in_scope_with_bounded_queries(org, login):
    tag = TagFactory()
    mine = CustomerFactory(owner=org.staff_a)
    theirs = CustomerFactory(owner=org.staff_b)
    tags_assign(customer_ids=[mine.pk, theirs.pk], tag=tag, source=Source.MANUAL)
    client = login(org.manager_a)
    response = client.get(reverse("tags:index"))
    assert [t.members for g in response.context["groups"] for t in g.tags] == [1]
    before = queries(client, reverse("tags:index"))
    # more groups, tags and tagged customers do not add queries
    for _ in range(3):
        extra = TagFactory(group=TagGroupFactory())
        tags_assign(
            customer_ids=[c.pk for c in CustomerFactory.create_batch(3, owner=org.staff_a)],
            tag=extra,
            source=Source.MANUAL,
        )
    assert queries(client, reverse("tags:index")) == before


def test_leads_create_and_edit_groups_and_tags(org, login):
    client = login(org.manager_a)
    response = client.post(
        reverse("tags:group_create"),
        {"name": "尺码", "dimension": "basic", "exclusive": "on", "order": "1"},
    )
    assert response.status_code == 302
    group = TagGroup.objects.get(name="尺码")
    assert group.exclusive and group.dimension == "basic"
    response = client.post(
        reverse("tags:tag_create", args=[group.pk]),
        {"name": "M码", "colour": "#FF0000", "description": "", "order": ""},
    )
    assert response.status_code == 302
    tag = Tag.objects.get(group=group)
    assert tag.colour == "#ff0000"
    response = client.post(
        reverse("tags:tag_edit", args=[tag.pk]), {"name": "L码", "colour": "#00ff00"}
    )
    assert response.status_code == 302
    tag.refresh_from_db()
    assert tag.name == "L码"
    response = client.post(
        reverse("tags:group_edit", args=[group.pk]),
        {"name": "尺码2", "dimension": "preference"},
    )
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.exclusive) == ("尺码2", False)
    assert client.get(reverse("tags:group_edit", args=[group.pk])).status_code == 200
    assert client.get(reverse("tags:tag_create", args=[group.pk])).status_code == 200


def test_bad_catalogue_input_is_a_clear_4xx(org, login):
    client = login(org.admin)
    tag = TagFactory()
    cases = [
        (reverse("tags:group_create"), {"name": "长" * 500, "dimension": "basic"}),
        (reverse("tags:group_create"), {"name": "x", "dimension": "mood"}),
        (reverse("tags:group_create"), {"name": tag.group.name, "dimension": "basic"}),
        (reverse("tags:tag_create", args=[tag.group.pk]), {"name": tag.name, "colour": "#000000"}),
        (reverse("tags:tag_create", args=[tag.group.pk]), {"name": "x", "colour": "red"}),
        (
            reverse("tags:tag_create", args=[tag.group.pk]),
            {"name": "x", "colour": "#000000", "order": "-1"},
        ),
    ]
    for url, data in cases:
        response = client.post(url, data)
        assert response.status_code == 400, (url, data)
        assert "alert-error" in response.content.decode()
    assert client.post(reverse("tags:tag_create", args=[99999]), {"name": "x"}).status_code == 404
    assert client.get(reverse("tags:tag_edit", args=[99999])).status_code == 404
    assert Tag.objects.count() == 1 and TagGroup.objects.count() == 1


def test_deleting_a_group_removes_its_tags_with_history(org, login):
    tag = TagFactory()
    customer = CustomerFactory()
    tags_assign(customer_ids=[customer.pk], tag=tag, source=Source.MANUAL)
    response = login(org.admin).post(reverse("tags:group_delete", args=[tag.group.pk]))
    assert response.status_code == 302
    assert not Tag.objects.exists() and not CustomerTag.objects.exists()
    assert TagChange.objects.filter(customer=customer, action="removed").count() == 1


# The profile


@pytest.fixture
def mine(org):
    customer = CustomerFactory(name="王小明", owner=org.staff_a)
    RelationshipFactory(customer=customer, staff=org.staff_a)
    return customer


def test_profile_shows_tags_grouped_by_dimension(org, login, mine):
    tag = TagFactory(name="爱喝咖啡", group__dimension=TagGroup.Dimension.PREFERENCE)
    TagFactory(name="未贴标签")
    tags_assign(customer_ids=[mine.pk], tag=tag, source=Source.MANUAL)
    content = login(org.staff_a).get(reverse("customers:detail", args=[mine.pk])).content.decode()
    assert 'id="customer-tags"' in content
    assert "爱喝咖啡" in content and "未贴标签" in content  # a chip and an option
    assert remove_url(mine, tag) in content


def test_profile_queries_do_not_grow_with_tags(org, login, mine):
    client = login(org.staff_a)
    url = reverse("customers:detail", args=[mine.pk])
    tags_assign(customer_ids=[mine.pk], tag=TagFactory(), source=Source.MANUAL)
    before = queries(client, url)
    for _ in range(5):
        tags_assign(
            customer_ids=[mine.pk], tag=TagFactory(group=TagGroupFactory()), source="manual"
        )
        TagFactory()
    assert queries(client, url) == before


def test_staff_tags_their_own_customer_via_htmx(org, login, mine):
    tag = TagFactory(name="复购")
    client = login(org.staff_a)
    response = client.post(add_url(mine), {"tag": tag.pk}, **HTMX)
    assert response.status_code == 200
    assert "复购" in response.content.decode()
    link = CustomerTag.objects.get(customer=mine)
    assert (link.tag_id, link.added_by_id, link.source) == (tag.pk, org.staff_a.user.pk, "manual")
    response = client.post(remove_url(mine, tag), **HTMX)
    assert response.status_code == 200
    assert not CustomerTag.objects.exists()
    assert TagChange.objects.filter(customer=mine).count() == 2


def test_without_htmx_the_profile_is_reloaded(org, login, mine):
    tag = TagFactory()
    response = login(org.staff_a).post(add_url(mine), {"tag": tag.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[mine.pk])


@pytest.mark.parametrize("who", ["staff_b", "staff_a2", "manager_b"])
def test_tagging_outside_the_scope_is_404(org, login, mine, who):
    tag = TagFactory()
    tags_assign(customer_ids=[mine.pk], tag=tag, source=Source.MANUAL)
    client = login(getattr(org, who))
    assert client.post(add_url(mine), {"tag": TagFactory().pk}, **HTMX).status_code == 404
    assert client.post(remove_url(mine, tag), **HTMX).status_code == 404
    assert CustomerTag.objects.filter(customer=mine).count() == 1


def test_bad_profile_input_is_a_clear_4xx(org, login, mine):
    client = login(org.staff_a)
    response = client.post(add_url(mine), {"tag": "99999"}, **HTMX)
    assert response.status_code == 400
    assert "alert-error" in response.content.decode()
    assert client.post(add_url(mine), {"tag": "abc"}).status_code == 400
    assert client.post(add_url(mine), {}).status_code == 400
    assert (
        client.post(reverse("tags:customer_remove", args=[99999, TagFactory().pk])).status_code
        == 404
    )
    assert client.get(add_url(mine)).status_code == 405
    assert not CustomerTag.objects.exists()


# Bulk tagging from the customer list


def test_bulk_tags_exactly_the_filtered_scoped_customers(org, login):
    a1 = CustomerFactory.create_batch(3, owner=org.staff_a, stage="member")
    CustomerFactory.create_batch(2, owner=org.staff_a, stage="lead")
    CustomerFactory.create_batch(2, owner=org.staff_b, stage="member")  # another store
    tag = TagFactory()
    client = login(org.manager_a)
    url = reverse("tags:bulk") + "?stage=member"
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["count"] == 3
    response = client.post(url, {"tag": tag.pk, "action": "add"})
    assert response.status_code == 302
    assert set(CustomerTag.objects.values_list("customer_id", flat=True)) == {c.pk for c in a1}
    response = client.post(url, {"tag": tag.pk, "action": "remove"})
    assert response.status_code == 302
    assert not CustomerTag.objects.exists()


def test_bulk_link_on_the_list_carries_the_filters(org, login):
    CustomerFactory(owner=org.staff_a)
    content = login(org.admin).get(reverse("customers:list") + "?stage=lead").content.decode()
    assert reverse("tags:bulk") + "?stage=lead" in content
    content = login(org.staff_a).get(reverse("customers:list")).content.decode()
    assert reverse("tags:bulk") not in content


def test_bulk_is_for_leads_only(org, login):
    assert login(org.staff_a).get(reverse("tags:bulk")).status_code == 404


def test_bulk_bad_input_is_a_clear_4xx(org, login):
    CustomerFactory(owner=org.staff_a)
    client = login(org.manager_a)
    url = reverse("tags:bulk")
    assert client.post(url, {"tag": "99999", "action": "add"}).status_code == 400
    assert client.post(url, {"tag": TagFactory().pk, "action": "zap"}).status_code == 400
    # a filter that does not parse (another store's id) is refused, not left out
    response = client.post(
        f"{url}?store={org.store_b.pk}", {"tag": TagFactory().pk, "action": "add"}
    )
    assert response.status_code == 400
    assert client.get(f"{url}?q={'x' * 500}").status_code == 400
    assert not CustomerTag.objects.exists()


def test_bulk_over_the_cap_is_refused(org, login, monkeypatch):
    from siyu.tags import views

    monkeypatch.setattr(views, "MAX_BULK", 2)
    CustomerFactory.create_batch(3, owner=org.staff_a)
    client = login(org.admin)
    response = client.get(reverse("tags:bulk"))
    assert response.status_code == 200 and "alert-error" in response.content.decode()
    response = client.post(reverse("tags:bulk"), {"tag": TagFactory().pk, "action": "add"})
    assert response.status_code == 400
    assert not CustomerTag.objects.exists()
