"""The segment builder in a real browser: two conditions, the live count, save; and the form
reading back a saved definition with every kind of condition.

Runs Debian's Chromium through Playwright against the live test server, like
console/tests/test_browser_flow.py, whose fixture and skip rule it shares.
"""

import json

import pytest

from siyu.console.tests import test_browser_flow as flow
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.tests.factories import PASSWORD
from siyu.segments.models import Segment
from siyu.tags.models import CustomerTag
from siyu.tags.tests.factories import TagFactory

browser_page = flow.browser_page  # the shared fixture
pytestmark = flow.pytestmark  # skipped without Chromium, except in CI


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


@pytest.mark.django_db(transaction=True)
def test_the_form_reads_back_every_kind_of_condition(org, live_server, browser_page):
    tag = TagFactory(name="沉睡")
    definition = {
        "all": [
            {"attr": "gender", "op": "in", "value": ["f", "m"]},
            {"attr": "age", "op": "between", "value": [20, 40]},
            {"attr": "consent_sms", "op": "is_set", "value": False},
            {"attr": "owner", "op": "eq", "value": org.staff_a.pk},
            {"attr": "rfm_monetary", "op": "gte", "value": 100.5},
            {"attr": "first_seen", "op": "within_days", "value": 90},
            {
                "any": [
                    {"tags": {"none": [tag.pk]}},
                    {"orders": {"within_days": 30, "amount": {"gte": 99.5, "lte": 500}}},
                    {"orders": {"product": "面霜", "none": True}},
                ]
            },
            {
                "not": {
                    "any": [
                        {"relationship": "deleted_us"},
                        {
                            "events": {
                                "type": "material_view",
                                "within_days": 7,
                                "properties": {"channel": "douyin", "step": 2},
                                "at_least": 2,
                            }
                        },
                    ]
                }
            },
            {"not": {"relationship": "active_friend"}},
        ]
    }
    segment = Segment.objects.create(name="复杂分群", definition=definition)
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.admin.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/segments/{segment.pk}/edit/")
    page.wait_for_selector("[data-preview=count]")  # the server accepted what the form built
    assert page.locator(".builder-leaf").count() == 12
    assert page.locator(".builder-json").count() == 0  # every condition has its own inputs
    assert json.loads(page.input_value("textarea[name=definition]")) == definition
