"""A staff member's day in a real browser: log in, find a customer by pinyin, reveal a phone.

Runs Debian's Chromium through Playwright against the live test server. CI installs Chromium
and requires this test; elsewhere it is skipped when Chromium is missing.
"""

import os
import shutil

import pytest
from django.db import connections

from siyu.core.models import AuditLog
from siyu.customers.tests.factories import CustomerFactory, PhoneIdentityFactory
from siyu.org.tests.factories import PASSWORD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="Chromium is not installed"
)


@pytest.fixture
def browser_page():
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(locale="zh-CN")
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        # The test's ORM calls ran with Playwright's event loop current, so Django gave them
        # connections of their own, which the test database's teardown would find still open.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.mark.django_db(transaction=True)
def test_staff_find_a_customer_by_pinyin_and_reveal_the_phone(org, live_server, browser_page):
    mine = CustomerFactory(owner=org.staff_a, name="欧阳娜娜")
    PhoneIdentityFactory(customer=mine, value="+8613812341234")
    CustomerFactory(owner=org.staff_b, name="欧阳修")  # another staff member's customer
    page = browser_page

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.staff_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/customers/")
    page.fill("input[name=q]", "oyn")  # pinyin initials, typed: htmx searches as you type
    page.wait_for_function(
        "document.querySelector('#customer-results').innerText.includes('欧阳娜娜')"
    )
    results = page.inner_text("#customer-results")
    assert "欧阳修" not in results
    assert "138****1234" in results and "13812341234" not in results

    page.click("text=欧阳娜娜")
    page.wait_for_url(f"{live_server.url}/customers/{mine.pk}/")
    page.click(f"button[hx-target='#identity-{mine.identities.get().pk}']")
    page.wait_for_function("document.body.innerText.includes('+8613812341234')")
    assert AuditLog.objects.filter(action="reveal", target_id=str(mine.pk)).count() == 1
