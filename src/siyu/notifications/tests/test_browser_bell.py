"""The bell in a real browser: its count loads after the page and refreshes without a reload.
Skipped where Chromium is missing, like the console's browser test."""

import pytest

from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.notifications.services import notify
from siyu.org.tests.factories import PASSWORD


@pytest.mark.django_db(transaction=True)
def test_bell_count_appears_and_updates_live(org, live_server, browser_page):  # noqa: F811
    notify(staff_ids=[org.staff_a.pk], kind="material_viewed", key="a", title="王小美 opened 手册")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.staff_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.wait_for_selector("#bell .bell-count[data-unread='1']")

    notify(staff_ids=[org.staff_a.pk], kind="material_viewed", key="b", title="李雷 opened 海报")
    # Coming back to the tab refreshes at once instead of waiting for the 20 s poll.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_selector("#bell .bell-count[data-unread='2']")

    page.click("#bell")
    page.wait_for_url(f"{live_server.url}/notifications/")
    page.click("text=全部标为已读")
    page.wait_for_url(f"{live_server.url}/notifications/")
    page.wait_for_function("document.querySelector('#bell .bell-count') === null")
