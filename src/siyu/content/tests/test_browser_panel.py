"""The profile's script panel in a real browser: it loads with htmx, searches as you type, and
the copy button copies and counts a use. Skipped where Chromium is missing, like the console's
browser test."""

import pytest

from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.content.models import Script
from siyu.content.services import script_category_create
from siyu.content.tests.factories import ScriptFactory
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.tests.factories import PASSWORD


@pytest.mark.django_db(transaction=True)
def test_staff_pick_a_script_on_the_profile_and_copy_it(org, live_server, browser_page):  # noqa: F811
    customer = CustomerFactory(owner=org.staff_a, name="王小美")
    # Own category: a transactional test starts without the migration's built-in rows.
    own = script_category_create(name="回访")
    ScriptFactory(category=own, title="开场白", body="{customer.name}您好，我是{staff.nickname}")
    ScriptFactory(category=own, title="售后回访", body="{customer.name}，用得怎么样？")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.staff_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    page.wait_for_selector("#customer-scripts textarea")
    page.fill("#customer-scripts input[name=q]", "售后")
    page.wait_for_function("document.querySelectorAll('#customer-scripts textarea').length === 1")
    assert page.input_value("#customer-scripts textarea") == "王小美，用得怎么样？"
    page.click("#customer-scripts button")
    page.wait_for_selector("#customer-scripts >> text=已复制")
    for _ in range(50):  # the counting POST lands after the click
        if Script.objects.get(title="售后回访").usage_count == 1:
            break
        page.wait_for_timeout(100)
    assert Script.objects.get(title="售后回访").usage_count == 1
    assert Script.objects.get(title="开场白").usage_count == 0
