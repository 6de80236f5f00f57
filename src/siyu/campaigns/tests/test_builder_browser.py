"""The campaign builder in a real browser: htmx adds a variant in place, Alpine shows the
recurring schedule's field, the next runs appear as the schedule is typed, the draft saves.

Skipped when Chromium is missing (as the console's browser test)."""

import pytest

from siyu.campaigns.models import Campaign
from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.org.tests.factories import PASSWORD


@pytest.mark.django_db(transaction=True)
def test_a_manager_builds_a_recurring_campaign_in_the_browser(
    org,
    live_server,
    browser_page,  # noqa: F811
    segment,
):
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.manager_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("input[name=name]", "每周一早安")
    page.select_option("select[name=segment]", str(segment.pk))
    assert not page.is_visible("input[name=schedule]")
    page.select_option("select[name=kind]", "recurring")
    page.wait_for_selector("input[name=schedule]", state="visible")
    page.fill("input[name=schedule]", "0 9 * * 1")
    page.press("input[name=schedule]", "Tab")  # change: htmx asks for the next runs
    page.wait_for_function("document.querySelector('#next-runs').innerText.includes('09:00')")

    page.fill("textarea[name=s0v0-body]", "{customer.name}，早上好")
    page.click("button[value='add_variant:0']")  # htmx swaps the steps part only
    page.wait_for_selector("#step-0-variant-1")
    assert page.input_value("textarea[name=s0v0-body]") == "{customer.name}，早上好"
    assert page.input_value("input[name=name]") == "每周一早安"  # the rest was not reloaded
    page.fill("textarea[name=s0v1-body]", "新的一周，新的优惠")

    page.click("#builder-save")
    page.wait_for_url(f"{live_server.url}/campaigns/*/edit/")
    campaign = Campaign.objects.get(name="每周一早安")
    assert campaign.schedule == "0 9 * * 1" and campaign.owner == org.manager_a
    assert sorted(campaign.steps.get().variants.values_list("name", flat=True)) == ["A", "B"]
