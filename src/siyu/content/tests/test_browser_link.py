"""A tracked link in a real browser: the page records the open and, when the reader leaves,
its beacon raises the visit's reading time. Skipped where Chromium is missing, like the
console's browser test."""

import pytest
from django.db import OperationalError

from siyu.console.tests.test_browser_flow import browser_page, pytestmark  # noqa: F401
from siyu.content.models import Material, MaterialView
from siyu.content.services import tracked_link_for
from siyu.content.tests.factories import MaterialFactory
from siyu.customers.tests.factories import CustomerFactory
from siyu.notifications.models import Notification

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50"


@pytest.mark.django_db(transaction=True)
def test_the_beacon_reports_the_reading_time_when_the_reader_leaves(
    org,
    live_server,
    browser_page,  # noqa: F811
):
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    article = MaterialFactory(
        kind=Material.Kind.ARTICLE, title="春季护肤指南", url="", body="<p>早晚清洁</p>"
    )
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    page = browser_page
    page.set_extra_http_headers({"User-Agent": PHONE_UA})
    page.goto(f"{live_server.url}/m/{link.code}")
    assert page.text_content("h1") == "春季护肤指南"
    assert MaterialView.objects.filter(link=link).count() == 1
    page.wait_for_timeout(2_200)
    page.goto("about:blank")  # pagehide: the beacon goes out

    def read_noted() -> bool:  # the notification follows the reading time, after its commit
        try:
            return not Notification.objects.get(staff=org.staff_a).title.endswith(" 0秒")
        except OperationalError:  # SQLite's shared in-memory test database locks whole tables
            return False  # while the live server writes; look again on the next round

    for _ in range(50):
        if read_noted():
            break
        page.wait_for_timeout(100)
    assert 2 <= MaterialView.objects.get(link=link).seconds <= 10
    note = Notification.objects.get(staff=org.staff_a)
    assert note.title.startswith("张三 打开了《春季护肤指南》 第1次，累计阅读 ")
    assert read_noted()
