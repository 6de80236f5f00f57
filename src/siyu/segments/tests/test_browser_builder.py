"""The segment builder in a real browser: two conditions, the live count, save.

Runs Debian's Chromium through Playwright against the live test server, like
console/tests/test_browser_flow.py (whose fixture and skip rule it shares).
"""

import pytest

from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.tests.factories import PASSWORD
from siyu.segments.models import Segment
from siyu.tags.models import CustomerTag
from siyu.tags.tests.factories import TagFactory


def _count_is(page, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('[data-preview=count]')?.dataset.count === String(n)", arg=n
    )


@pytest.mark.django_db(transaction=True)
def test_manager_builds_a_two_condition_segment_and_saves_it(org, live_server, browser_page):
    vip = TagFactory(name="高价值")
    women = [CustomerFactory(owner=org.staff_a, gender="f") for _ in range(3)]
    CustomerFactory(owner=org.staff_a, gender="m")
    CustomerFactory(owner=org.staff_b, gender="f")  # another store: outside the manager's scope
    CustomerTag.objects.create(customer=women[0], tag=vip, source="manual")
    page = browser_page

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.manager_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/segments/new/")
    # condition 1: gender is female; the count follows as you edit
    page.click("[data-action=add-condition]")
    first = page.locator(".builder-leaf").nth(0)
    first.locator("[data-role=value]").select_option("f")
    _count_is(page, 3)
    # condition 2: has the tag 高价值, picked from its tag group
    page.click("[data-action=add-condition]")
    second = page.locator(".builder-leaf").nth(1)
    second.locator("[data-role=kind]").select_option("tags")
    second.get_by_label("高价值").check()
    _count_is(page, 1)
    # the JSON follows the form; a bad value typed there shows the path of the bad part
    page.click(".builder-advanced summary")
    typed = page.input_value("textarea[name=definition]").replace('"f"', '"x"')
    page.fill("textarea[name=definition]", typed)
    page.wait_for_selector("[data-preview=error] >> text=all[0].value")
    # and the form follows the JSON: fixing the value there brings the count back
    first.locator("[data-role=value]").select_option("f")
    _count_is(page, 1)

    page.fill("input[name=name]", "高价值女客户")
    page.click(".builder-save button[type=submit]")
    page.wait_for_url(f"{live_server.url}/segments/*/")
    segment = Segment.objects.get(name="高价值女客户")
    assert page.url == f"{live_server.url}/segments/{segment.pk}/"
    assert segment.definition == {
        "all": [{"attr": "gender", "op": "eq", "value": "f"}, {"tags": {"any": [vip.pk]}}]
    }
    assert page.inner_text("#segment-count") == "1"
