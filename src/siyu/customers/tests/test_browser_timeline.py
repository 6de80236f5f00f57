"""The profile's timeline in a real browser: scrolling loads the older pages, once each."""

from datetime import UTC, datetime, timedelta

import pytest

from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.tests.factories import PASSWORD
from siyu.segments.models import StageChange

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_scrolling_the_timeline_loads_every_older_record_once(org, live_server, browser_page):  # noqa: F811
    # given a customer with 75 stage changes, ten of them at one instant
    customer = CustomerFactory(owner=org.staff_a, name="王小明")
    times = [T0 - timedelta(minutes=m) for m in range(65)] + [T0 - timedelta(hours=5)] * 10
    StageChange.objects.bulk_create(
        StageChange(customer=customer, from_stage="lead", to_stage="engaged", at=when)
        for when in times
    )
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.staff_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # when the staff member opens the profile and scrolls down the timeline
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    items = "#customer-timeline li.timeline-stage"
    assert page.locator(items).count() == 30
    for _ in range(10):
        if page.locator(items).count() == 75:
            break
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(300)
    # then every record is there once, newest first, and nothing more is offered
    assert page.locator(items).count() == 75
    assert page.locator("#customer-timeline .timeline-more").count() == 0
    stamps = page.eval_on_selector_all(
        f"{items} time", "nodes => nodes.map(n => n.getAttribute('datetime'))"
    )
    assert stamps == sorted(stamps, reverse=True)
    # one header for the day, however many pages it spans
    assert page.locator("#customer-timeline li.timeline-day").count() == 1

    # and the kind links swap the timeline alone, back to its first page
    page.click("#customer-timeline nav >> text=订单")
    page.wait_for_selector("#customer-timeline >> text=暂无时间线记录")
    assert page.url.endswith(f"/customers/{customer.pk}/?kind=order")
