"""Timeline pages: keyset cursors over (time, kind, id), ties, the kind filter, bad page links,
and the "older" link on the profile, with and without htmx."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from siyu.commerce.models import Order
from siyu.customers.models import Identity, MergeRecord, Relationship
from siyu.customers.tests.factories import (
    ChannelFactory,
    CustomerFactory,
    DeliveryFactory,
    VariantFactory,
)
from siyu.customers.timeline import KINDS, Cursor, CursorError, customer_timeline
from siyu.events.services import events_ingest, events_validate
from siyu.org.tests.factories import StaffFactory
from siyu.segments.models import StageChange
from siyu.tags.models import TagChange

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def all_pages(customer, *, kinds=None, limit: int) -> list[tuple[str, int]]:
    """Every page from the newest, following the cursor; (kind, id) of each item."""
    seen, before = [], None
    while True:
        page = customer_timeline(customer, kinds=kinds, before=before, limit=limit)
        assert len(page.items) <= limit
        seen.extend((i.kind, i.id) for i in page.items)
        if not page.has_more:
            return seen
        assert page.items, "a page that says there is more is never empty"
        before = page.next_cursor


DELIVERY_TIMES = {
    "sent": "sent_at",
    "failed": "claimed_at",
    "suppressed": "planned_for",
    "pending": "planned_for",
}
# One record: its kind and a minute out of very few, so that times tie often.
record = st.tuples(
    st.sampled_from(
        [
            *("event", "order", "tag", "stage", "relationship", "removal", "merge"),
            *("sent", "failed", "suppressed", "pending"),  # deliveries; pending is not shown
        ]
    ),
    st.integers(min_value=0, max_value=3),
)


class TimelinePagingProperties(TestCase):
    """Whatever the records and their ties, paging shows each exactly once, in order."""

    def _make(self, customer, records) -> int:
        """Create the records; how many timeline items they make."""
        channel = ChannelFactory(code="tmall")
        variant = VariantFactory()
        for n, (kind, minute) in enumerate(records):
            when = at(minute)
            if kind in DELIVERY_TIMES:  # each status at the time it keeps
                DeliveryFactory(
                    customer=customer, variant=variant, status=kind, **{DELIVERY_TIMES[kind]: when}
                )
            elif kind == "event":
                customer.events.create(type="joined_group", occurred_at=when)
            elif kind == "order":
                Order.objects.create(
                    customer=customer,
                    channel=channel,
                    external_id=f"o{n}",
                    amount=Decimal("9.90"),
                    status="paid",
                    paid_at=when,
                )
            elif kind == "tag":
                TagChange.objects.create(
                    customer=customer, tag_name="t", action="added", source="manual", at=when
                )
            elif kind == "stage":
                StageChange.objects.create(
                    customer=customer, from_stage="lead", to_stage="engaged", at=when
                )
            elif kind in ("relationship", "removal"):
                removed = {"status": "removed", "removed_at": when, "removed_by": "customer"}
                Relationship.objects.create(
                    customer=customer,
                    staff=StaffFactory(),
                    added_at=when,
                    **(removed if kind == "removal" else {}),
                )
            else:
                record = MergeRecord.objects.create(survivor=customer, absorbed=CustomerFactory())
                MergeRecord.objects.filter(pk=record.pk).update(merged_at=when)
        return sum({"removal": 2, "pending": 0}.get(kind, 1) for kind, _ in records)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        records=st.lists(record, max_size=24),
        limit=st.integers(min_value=1, max_value=7),
        kind=st.sampled_from([None, *KINDS]),
    )
    def test_pages_show_every_record_once_in_timeline_order(self, records, limit, kind):
        customer = CustomerFactory()
        total = self._make(customer, records)
        kinds = [kind] if kind else None
        everything = customer_timeline(customer, kinds=kinds, limit=1000)
        if kind is None:
            assert len(everything.items) == total
        keys = [(i.at, -list(KINDS).index(i.kind), i.id) for i in everything.items]
        assert keys == sorted(keys, reverse=True)
        assert len(set(keys)) == len(keys)
        assert all_pages(customer, kinds=kinds, limit=limit) == [
            (i.kind, i.id) for i in everything.items
        ]


@pytest.mark.django_db
def test_events_that_share_a_time_are_paged_one_by_one_without_loss():
    # given three events ingested through the API's service at the same instant
    customer = CustomerFactory()
    Identity.objects.create(customer=customer, kind="phone", value="+8613800000000")
    same = "2026-03-01T10:00:00.250+08:00"
    valid, invalid = events_validate(
        [
            {"customer": {"phone": "13800000000"}, "type": f"checked_in_{n}", "occurred_at": same}
            for n in range(3)
        ]
    )
    assert not invalid
    events_ingest(valid)
    # when paging one by one, then each comes once
    items = all_pages(customer, limit=1)
    assert sorted(items) == sorted(
        ("event", pk) for pk in customer.events.values_list("pk", flat=True)
    )
    assert len(items) == 3


def test_a_cursor_reads_back_what_it_wrote():
    cursor = Cursor(datetime(2026, 3, 1, 2, 0, 0, 123456, tzinfo=UTC), "relationship", 41)
    assert str(cursor) == "1772330400123456.relationship.41"
    assert Cursor.parse(str(cursor)) == cursor
    old = Cursor(datetime(1960, 1, 1, tzinfo=UTC), "order", 1)
    assert Cursor.parse(str(old)) == old


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "1.order",
        "1.order.2.3",
        "x.order.1",
        "1.order.-1",
        "1.order.1e3",
        "1.bogus.1",
        "1..1",
        "99999999999999999.order.1",  # the year 5138
        "-99999999999999999.order.1",
        "999999999999999999.order.1",  # past the year 9999
        "1.order.9999999999999999999",
        "１.order.1",  # a full-width digit
    ],
)
def test_a_bad_cursor_is_refused_with_a_reason(text):
    with pytest.raises(CursorError):
        Cursor.parse(text)


# Through the console: the profile and its timeline partial.


@pytest.fixture
def long_history(org):
    """staff_a's customer with 35 stage changes, a minute apart."""
    customer = CustomerFactory(name="王小明", owner=org.staff_a)
    StageChange.objects.bulk_create(
        StageChange(customer=customer, from_stage="lead", to_stage="engaged", at=at(m))
        for m in range(35)
    )
    return customer


def urls(customer) -> tuple[str, str]:
    return (
        reverse("customers:detail", args=[customer.pk]),
        reverse("customers:timeline", args=[customer.pk]),
    )


def test_the_older_link_appends_the_next_page_with_htmx(org, long_history, login):
    profile, partial = urls(long_history)
    client = login(org.staff_a)
    first = client.get(profile)
    timeline = first.context["timeline"]
    assert len(timeline.items) == 30 and timeline.has_more
    cursor = str(timeline.next_cursor)
    content = first.content.decode()
    # a plain link to the profile's older page, which htmx loads in its place when revealed
    assert f'href="{profile}?before={cursor}#customer-timeline"' in content
    assert f'hx-get="{partial}?before={cursor}"' in content
    assert 'hx-trigger="click, revealed"' in content and 'hx-target="closest li"' in content
    assert content.count("更早的记录") == 1

    older = client.get(f"{partial}?before={cursor}", headers={"HX-Request": "true"})
    assert older.status_code == 200
    body = older.content.decode()
    # only the five remaining records, as items of the list already on the page
    assert "<section" not in body and "<ol" not in body
    assert body.count('<li class="timeline-stage">') == 5
    assert "更早的记录" not in body and not older.context["timeline"].has_more
    # the day goes on from the first page: no second header for it
    assert "timeline-day" not in body
    shown = [i.id for i in timeline.items] + [i.id for i in older.context["timeline"].items]
    assert sorted(shown) == sorted(long_history.stage_changes.values_list("pk", flat=True))


def test_the_older_page_works_without_javascript(org, long_history, login):
    profile, _ = urls(long_history)
    client = login(org.staff_a)
    cursor = client.get(profile).context["timeline"].next_cursor
    response = client.get(f"{profile}?before={cursor}")
    assert response.status_code == 200
    section = response.content.decode().split('id="customer-timeline"')[1]
    assert section.count('<li class="timeline-stage">') == 5
    assert "回到最新记录" in section and "2026-03-01 星期日" in section


def test_the_kind_filter_carries_over_to_the_older_pages(org, long_history, login):
    profile, partial = urls(long_history)
    long_history.events.bulk_create(
        long_history.events.model(customer=long_history, type="visit", occurred_at=at(m + 0.5))
        for m in range(40)
    )
    client = login(org.staff_a)
    first = client.get(f"{profile}?kind=stage")
    cursor = first.context["timeline"].next_cursor
    assert f'hx-get="{partial}?kind=stage&amp;before={cursor}"' in first.content.decode()
    older = client.get(f"{partial}?kind=stage&before={cursor}", headers={"HX-Request": "true"})
    assert {i.kind for i in older.context["timeline"].items} == {"stage"}
    assert len(older.context["timeline"].items) == 5


@pytest.mark.parametrize("text", ["garbage", "1.bogus.1", "99999999999999999.order.1", "x" * 61])
def test_a_bad_page_link_is_a_400_with_the_reason(org, long_history, login, text):
    profile, partial = urls(long_history)
    client = login(org.staff_a)
    response = client.get(partial, {"before": text}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "翻页链接" in response.content.decode()
    # the profile reports it and shows the newest records
    content = client.get(profile, {"before": text}).content.decode()
    assert 'role="alert"' in content and content.count('<li class="timeline-stage">') == 30


def test_an_older_page_is_404_outside_the_scope(org, long_history, login):
    _, partial = urls(long_history)
    cursor = customer_timeline(long_history).next_cursor
    response = login(org.staff_b).get(f"{partial}?before={cursor}")
    assert response.status_code == 404
