"""Rule tags: members follow a segment definition, refreshed by difference with history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from siyu.core.errors import DomainError
from siyu.customers.models import Customer
from siyu.customers.tests.factories import CustomerFactory
from siyu.tags.models import CustomerTag, Source, TagChange
from siyu.tags.services import (
    rule_tag_refresh,
    tag_create,
    tag_group_update,
    tag_update,
    tags_assign,
    tags_remove,
)
from siyu.tags.tasks import rule_tag_refresh_task, rule_tags_refresh_hourly
from siyu.tags.tests.factories import TagFactory, TagGroupFactory

CHAMPIONS = {"attr": "rfm_group", "op": "eq", "value": "champions"}


def champions(n: int, **kwargs) -> list[Customer]:
    return [CustomerFactory(rfm_group="champions", **kwargs) for _ in range(n)]


def members(tag) -> set[int]:
    return set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True))


def changes(tag) -> list[tuple[int, str, str]]:
    return sorted(TagChange.objects.filter(tag=tag).values_list("customer_id", "action", "source"))


@pytest.fixture
def rule_tag(db):
    return tag_create(group=TagGroupFactory(), name="冠军客户", rule=CHAMPIONS)


def test_refresh_adds_and_removes_exactly_the_difference(rule_tag):
    # given three champions and one other customer, refreshed once
    a, b, c = champions(3)
    other = CustomerFactory(rfm_group="lost")
    first = rule_tag_refresh(tag=rule_tag)
    assert (first.added, first.removed) == (3, 0)
    assert members(rule_tag) == {a.pk, b.pk, c.pk}
    # when one champion falls away and another customer becomes one
    Customer.objects.filter(pk=a.pk).update(rfm_group="at_risk")
    Customer.objects.filter(pk=other.pk).update(rfm_group="champions")
    second = rule_tag_refresh(tag=rule_tag)
    # then only those two change, each with a history row from the rule
    assert (second.added, second.removed) == (1, 1)
    assert members(rule_tag) == {b.pk, c.pk, other.pk}
    assert changes(rule_tag) == sorted(
        [
            (a.pk, "added", "rule"),
            (b.pk, "added", "rule"),
            (c.pk, "added", "rule"),
            (a.pk, "removed", "rule"),
            (other.pk, "added", "rule"),
        ]
    )
    assert set(CustomerTag.objects.filter(tag=rule_tag).values_list("source", flat=True)) == {
        "rule"
    }


def test_a_second_refresh_changes_nothing(rule_tag):
    champions(4)
    rule_tag_refresh(tag=rule_tag)
    history = TagChange.objects.count()
    again = rule_tag_refresh(tag=rule_tag)
    assert (again.added, again.removed) == (0, 0)
    assert TagChange.objects.count() == history
    rule_tag.refresh_from_db()
    assert (rule_tag.last_added, rule_tag.last_removed) == (0, 0)
    assert rule_tag.refreshed_at is not None


def test_refresh_covers_all_customers_but_not_merged_tombstones(org, rule_tag):
    mine, theirs = champions(1, owner=org.staff_a)[0], champions(1, owner=org.staff_b)[0]
    survivor = CustomerFactory()
    tombstone = champions(1)[0]
    Customer.objects.filter(pk=tombstone.pk).update(merged_into=survivor)
    rule_tag_refresh(tag=rule_tag)
    assert members(rule_tag) == {mine.pk, theirs.pk}


def test_refresh_is_set_based(rule_tag):
    champions(3)
    with CaptureQueriesContext(connection) as small:
        rule_tag_refresh(tag=rule_tag)
    CustomerTag.objects.filter(tag=rule_tag).delete()
    champions(60)
    with CaptureQueriesContext(connection) as large:
        result = rule_tag_refresh(tag=rule_tag)
    assert result.added == 63
    assert len(large) == len(small)


@translation.override("en")
def test_manual_assignment_and_removal_of_a_rule_tag_are_refused(rule_tag):
    customer = champions(1)[0]
    with pytest.raises(DomainError, match="冠军客户 is a rule tag"):
        tags_assign(customer_ids=[customer.pk], tag=rule_tag, source=Source.MANUAL)
    rule_tag_refresh(tag=rule_tag)
    with pytest.raises(DomainError, match="cannot be added or removed by hand"):
        tags_remove(customer_ids=[customer.pk], tag=rule_tag, source=Source.MANUAL)
    assert members(rule_tag) == {customer.pk}


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"all": [CHAMPIONS, {"attr": "rfm_r", "op": "eq", "value": 9}]}, "all[1].value"),
        ({"tags": {"some": [1]}}, "tags"),
        ("champions", "definition"),
    ],
)
def test_an_invalid_rule_is_rejected_with_its_path(db, rule, path):
    with pytest.raises(DomainError) as caught:
        tag_create(group=TagGroupFactory(), name="x", rule=rule)
    assert caught.value.field == "rule"
    assert caught.value.message.startswith(f"{path}:")


@translation.override("en")
def test_a_rule_cannot_use_its_own_tag_or_sit_in_an_exclusive_group(rule_tag):
    with pytest.raises(DomainError, match="own tag"):
        tag_update(
            tag=rule_tag,
            name=rule_tag.name,
            colour="#1677ff",
            description="",
            order=0,
            rule={"not": {"tags": {"any": [rule_tag.pk]}}},
        )
    with pytest.raises(DomainError) as caught:
        tag_create(group=TagGroupFactory(exclusive=True), name="y", rule=CHAMPIONS)
    assert caught.value.field == "rule"
    group = rule_tag.group
    with pytest.raises(DomainError) as caught:
        tag_group_update(group=group, name=group.name, dimension="basic", exclusive=True, order=0)
    assert caught.value.field == "exclusive"


def test_giving_a_manual_tag_a_rule_hands_its_customers_to_the_rule(db):
    tag = TagFactory()
    champion, other = champions(1)[0], CustomerFactory()
    tags_assign(customer_ids=[champion.pk, other.pk], tag=tag, source=Source.MANUAL)
    tag = tag_update(
        tag=tag, name=tag.name, colour=tag.colour, description="", order=0, rule=CHAMPIONS
    )
    result = rule_tag_refresh(tag=tag)
    assert (result.added, result.removed) == (0, 1)
    assert members(tag) == {champion.pk}


def test_the_hourly_task_refreshes_every_rule_tag(rule_tag):
    champions(2)
    manual = TagFactory()
    assert rule_tags_refresh_hourly.call_local() == {rule_tag.pk: (2, 0)}
    assert rule_tag_refresh_task.call_local(rule_tag.pk) == (0, 0)
    assert rule_tag_refresh_task.call_local(manual.pk) is None


# The pages


def test_tag_form_saves_a_rule_and_queues_a_refresh(org, login, django_capture_on_commit_callbacks):
    group = TagGroupFactory()
    champion = champions(1)[0]
    client = login(org.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("tags:tag_create", args=[group.pk]),
            {
                "name": "冠军",
                "colour": "#1677ff",
                "order": 0,
                "rule": '{"attr": "rfm_group", "op": "eq", "value": "champions"}',
            },
        )
    assert response.status_code == 302
    tag = group.tags.get()
    assert tag.rule == CHAMPIONS
    assert members(tag) == {champion.pk}


@pytest.mark.parametrize(
    ("rule", "shown"),
    [
        ('{"attr": "rfm_r", "op": "eq", "value": 7}', "value: must be an integer from 1 to 5"),
        ('{"attr": ', "JSON"),
    ],
)
def test_tag_form_shows_a_bad_rule_with_its_path(org, login, rule, shown):
    group = TagGroupFactory()
    response = login(org.admin).post(
        reverse("tags:tag_create", args=[group.pk]),
        {"name": "x", "colour": "#1677ff", "order": 0, "rule": rule},
    )
    assert response.status_code == 400
    assert not group.tags.exists()
    errors = " ".join(response.context["form"].errors["rule"])
    assert shown in errors


def test_refresh_now_shows_what_was_added_and_removed(
    org, login, rule_tag, django_capture_on_commit_callbacks
):
    champions(2)
    client = login(org.manager_a)
    edit = reverse("tags:tag_edit", args=[rule_tag.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("tags:tag_refresh", args=[rule_tag.pk]))
    assert response.status_code == 302 and response["Location"] == edit
    page = client.get(edit)
    assert page.context["tag"].last_added == 2
    assert 'id="rule-refresh"' in page.content.decode()
    # a manual tag has nothing to refresh; staff may not refresh at all
    assert client.post(reverse("tags:tag_refresh", args=[TagFactory().pk])).status_code == 404
    assert (
        login(org.staff_a).post(reverse("tags:tag_refresh", args=[rule_tag.pk])).status_code == 404
    )


def test_profile_panel_refuses_a_rule_tag_with_a_message(org, login, rule_tag):
    customer = CustomerFactory(owner=org.staff_a)
    client = login(org.staff_a)
    response = client.post(
        reverse("tags:customer_add", args=[customer.pk]),
        {"tag": rule_tag.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "alert-error" in response.content.decode()
    assert members(rule_tag) == set()
    # and the panel offers no rule tag to add
    panel = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert f'value="{rule_tag.pk}"' not in panel


def test_bulk_tagging_with_a_rule_tag_is_refused(org, login, rule_tag):
    champions(2, owner=org.staff_a)
    response = login(org.admin).post(reverse("tags:bulk"), {"tag": rule_tag.pk, "action": "add"})
    assert response.status_code == 400
    assert members(rule_tag) == set()
