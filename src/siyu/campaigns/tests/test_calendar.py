"""The campaign list's filters and the calendar: starts, next runs, spans; fixed query counts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.campaigns.models import Campaign
from siyu.campaigns.schedule import cron_days, cron_next
from siyu.campaigns.services import campaign_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def at(*args) -> datetime:
    """A moment in the organisation's zone (Asia/Shanghai)."""
    return timezone.make_aware(datetime(*args))


def day_cell(html: str, day: str) -> str:
    match = re.search(rf'data-date="{day}">(.*?)</td>', html, re.S)
    assert match, day
    return match.group(1)


def test_cron_days_walks_days_and_cuts_the_window_ends():
    # Mondays at 10:00 in Shanghai, in June 2026: the 1st, 8th, 15th, 22nd and 29th.
    days = cron_days("0 10 * * 1", after=at(2026, 6, 1), until=at(2026, 7, 1))
    assert [timezone.localtime(d).day for d, _ in days] == [1, 8, 15, 22, 29]
    assert all(n == 1 and timezone.localtime(d).hour == 10 for d, n in days)
    # Every 30 minutes from 9 to 10: four a day; the first day is cut at 09:40.
    days = cron_days("*/30 9-10 * * *", after=at(2026, 6, 1, 9, 40), until=at(2026, 6, 3))
    assert [(timezone.localtime(d).strftime("%d %H:%M"), n) for d, n in days] == [
        ("01 10:00", 2),
        ("02 09:00", 4),
    ]
    assert [d.astimezone(UTC).hour for d in cron_next("0 10 * * *", after=at(2026, 6, 1, 11))][
        :2
    ] == [2, 2]


def test_the_list_filters_by_status_kind_owner_and_name_and_pages(
    org, login, segment, settings, django_assert_num_queries
):
    settings.SIYU_PAGE_SIZE = 2
    for n in range(3):
        campaign_create(name=f"周报 {n}", kind="recurring", owner=org.staff_a, segment=segment)
    campaign_create(name="开学季", kind="broadcast", owner=org.manager_a, segment=segment)
    other = campaign_create(name="徐汇店活动", kind="journey", owner=org.staff_b)
    Campaign.objects.filter(pk=other.pk).update(status="running")
    client = login(org.admin)
    url = reverse("campaigns:list")

    with django_assert_num_queries(5):
        page = client.get(url, {"kind": "recurring"}).content.decode()
    assert page.count("周报") == 2 and 'href="?kind=recurring&amp;after=' in page

    older = re.search(r'href="(\?kind=recurring&amp;after=\d+)"', page).group(1)
    rest = client.get(url + older.replace("&amp;", "&"), HTTP_HX_REQUEST="true")
    assert rest.content.decode().count("周报") == 1 and "<html" not in rest.content.decode()

    assert "徐汇店活动" in client.get(url, {"status": "running"}).content.decode()
    assert "开学季" not in client.get(url, {"status": "running"}).content.decode()
    by_owner = client.get(url, {"owner": org.manager_a.pk}).content.decode()
    assert "开学季" in by_owner and "周报" not in by_owner
    found = client.get(url, {"q": "开学"}).content.decode()
    assert "开学季" in found and "周报" not in found
    assert "No campaign matches these filters." in client.get(url, {"q": "没有"}).content.decode()

    # A manager's owner choices are their store's staff: another store's is refused, not a 500.
    manager = login(org.manager_a)
    refused = manager.get(url, {"owner": org.staff_b.pk, "status": "nonsense"})
    assert refused.status_code == 400
    assert "valid choice" in refused.content.decode()
    html = manager.get(url).content.decode()
    assert "徐汇店活动" not in html
    assert 'id="campaign-new"' in html
    assert 'id="campaign-new"' not in login(org.staff_a).get(url).content.decode()


def test_the_month_shows_starts_next_runs_and_spans_with_a_fixed_number_of_queries(
    org, login, segment, django_assert_num_queries
):
    now = timezone.now()
    month = timezone.localtime(now).date().replace(day=1) + timedelta(days=40)
    month = month.replace(day=1)  # next month: every run in it is still to come
    start = timezone.make_aware(datetime(month.year, month.month, 10, 10, 30))
    broadcast = campaign_create(name="大促", kind="broadcast", owner=org.admin, start_at=start)
    campaign_create(
        name="每周一早报", kind="recurring", owner=org.admin, segment=segment, schedule="0 9 * * 1"
    )
    journey = campaign_create(
        name="新客旅程",
        kind="journey",
        owner=org.admin,
        segment=segment,
        start_at=start - timedelta(days=30),
        end_at=start + timedelta(days=2),
    )
    Campaign.objects.filter(pk=journey.pk).update(status="running", started_at=journey.start_at)
    campaign_create(name="草稿无时间", kind="broadcast", owner=org.admin)
    client = login(org.admin)
    url = reverse("campaigns:calendar")
    query = {"month": month.strftime("%Y-%m")}

    # session, user, staff row, owner choices, the campaigns
    with django_assert_num_queries(5):
        response = client.get(url, query)

    html = response.content.decode()
    assert response.status_code == 200
    tenth = day_cell(html, month.replace(day=10).isoformat())
    assert "10:30" in tenth and "大促" in tenth and "calendar-start" in tenth
    assert f'href="{reverse("campaigns:detail", args=[broadcast.pk])}"' in tenth
    mondays = [d for d in range(1, 29) if month.replace(day=d).weekday() == 0]
    for day in range(1, 29):
        cell = day_cell(html, month.replace(day=day).isoformat())
        assert ("每周一早报" in cell) == (day in mondays)
        assert ("新客旅程" in cell) == (day <= 12)
    assert "ends" in day_cell(html, month.replace(day=12).isoformat())
    assert "草稿无时间" not in html

    for n in range(6):  # more campaigns, the same queries
        campaign_create(name=f"加推 {n}", kind="broadcast", owner=org.admin, start_at=start)
    with django_assert_num_queries(5):
        html = client.get(url, query).content.decode()
    assert day_cell(html, month.replace(day=10).isoformat()).count("加推") == 6

    filtered = client.get(url, {**query, "kind": "journey"}).content.decode()
    assert "新客旅程" in filtered and "大促" not in filtered
    assert "kind=journey" in re.search(r'id="calendar-next" href="([^"]+)"', filtered).group(1)


def test_the_week_lists_its_days_and_bad_dates_are_refused(org, login, segment):
    now = timezone.now()
    monday = timezone.localdate(now) + timedelta(days=7 - timezone.localdate(now).weekday())
    campaign_create(
        name="每天提醒", kind="recurring", owner=org.admin, segment=segment, schedule="15 20 * * *"
    )
    client = login(org.staff_a)
    staff_page = client.get(reverse("campaigns:calendar"), {"view": "week", "week": monday})
    assert "每天提醒" not in staff_page.content.decode()  # not in staff A's scope

    client = login(org.admin)
    html = client.get(
        reverse("campaigns:calendar"), {"view": "week", "week": monday.isoformat()}
    ).content.decode()
    week = re.search(r'id="calendar-week">(.*?)</table>', html, re.S).group(1)
    assert week.count("<tr") == 7 and week.count("20:15") == 7

    bad_input = [{"month": "2026-13"}, {"week": "nope"}, {"view": "year"}, {"month": "1900-01"}]
    for bad in bad_input:
        response = client.get(reverse("campaigns:calendar"), bad)
        assert response.status_code == 400, bad
        assert "field-error" in response.content.decode()
