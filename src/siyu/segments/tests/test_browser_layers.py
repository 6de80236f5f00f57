"""The layer charts in a real browser: the RFM heatmap draws its cells, and a click on a cell
opens the customer list of its members; the funnel and the Pareto curve draw.

Runs Debian's Chromium through Playwright against the live test server, like
console/tests/test_browser_flow.py (whose fixture and skip rule it shares).
"""

from decimal import Decimal

import pytest

from siyu.console.tests import test_browser_flow as flow
from siyu.customers.models import Customer
from siyu.customers.tests.factories import CustomerFactory
from siyu.org.tests.factories import PASSWORD

browser_page = flow.browser_page  # the shared fixture
pytestmark = flow.pytestmark  # skipped without Chromium, except in CI


@pytest.mark.django_db(transaction=True)
def test_a_heatmap_cell_opens_its_members(org, live_server, browser_page):
    for monetary in ("100", "300"):
        customer = CustomerFactory(owner=org.staff_a, name=f"五三{monetary}", stage="repeat")
        Customer.objects.filter(pk=customer.pk).update(
            rfm_r=5, rfm_f=3, rfm_m=4, rfm_group="champions", rfm_monetary=Decimal(monetary)
        )
    other = CustomerFactory(owner=org.staff_a, name="一一")
    Customer.objects.filter(pk=other.pk).update(
        rfm_r=1, rfm_f=1, rfm_m=1, rfm_group="lost", rfm_monetary=Decimal(5)
    )
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", org.manager_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/segments/layers/rfm/")
    label = page.locator("[data-layer-chart=heatmap] svg text", has_text="¥200.00")
    label.wait_for()
    label.click()
    page.wait_for_url("**/customers/?rfm_r=5&rfm_f=3")
    results = page.inner_text("#customer-results")
    assert "五三100" in results and "五三300" in results and "一一" not in results

    page.goto(f"{live_server.url}/segments/layers/lifecycle/")
    page.locator("[data-layer-chart=funnel] svg text", has_text="复购").wait_for()
    page.goto(f"{live_server.url}/segments/layers/super-users/")
    page.wait_for_function(  # the curve is drawn: a line path with points
        "[...document.querySelectorAll('[data-layer-chart=pareto] svg path')]"
        ".some(p => (p.getAttribute('d') || '').split('L').length > 2)"
    )
    assert errors == []
