"""The console side of tracked links: sharing from the material page (customer in scope or a
channel, link and QR code), the material's views and stats per sharer within the viewer's
scope, drafts kept to leads and their owner, and the page's fixed query count."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.content.models import Material, MaterialView, TrackedLink
from siyu.content.services import material_view_read, tracked_link_for
from siyu.content.tests.factories import MaterialFactory
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
PHONE = {"HTTP_USER_AGENT": "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0"}


def detail_url(material) -> str:
    return reverse("content:material_detail", args=[material.pk])


def share_url(material) -> str:
    return reverse("content:material_share", args=[material.pk])


def open_link(link, seconds: int = 0) -> None:
    """A customer's phone opens the link (a fresh browser each time) and reads `seconds`."""
    Client().get(f"/m/{link.code}", **PHONE)
    if seconds:
        token = MaterialView.objects.filter(link=link).latest("pk").token
        material_view_read(code=link.code, token=token, seconds=seconds)


def test_staff_share_with_a_customer_of_theirs_and_get_link_and_qr(org, login):
    material = MaterialFactory(title="会员日海报")
    mine = CustomerFactory(owner=org.staff_a, name="李雷")
    CustomerFactory(owner=org.staff_b, name="李梅")  # another store's customer
    client = login(org.staff_a)
    page = client.get(detail_url(material)).content.decode()
    assert share_url(material) in page
    found = client.get(share_url(material), {"q": "李"}, **HTMX).content.decode()
    assert "李雷" in found and "李梅" not in found

    response = client.post(share_url(material), {"customer": mine.pk}, **HTMX)
    html = response.content.decode()
    link = TrackedLink.objects.get()
    assert (link.material, link.staff, link.customer, link.channel) == (
        material,
        org.staff_a,
        mine,
        None,
    )
    assert response.status_code == 200
    assert f"http://testserver/m/{link.code}" in html and "<svg" in html
    # Sharing again gives the same link.
    client.post(share_url(material), {"customer": mine.pk}, **HTMX)
    assert TrackedLink.objects.count() == 1


def test_sharing_without_htmx_comes_back_to_the_page_with_the_link(org, login):
    material = MaterialFactory()
    channel = ChannelFactory(name="抖音直播间")
    client = login(org.staff_a)
    response = client.post(share_url(material), {"channel": channel.pk})
    link = TrackedLink.objects.get(channel=channel)
    assert response.status_code == 302 and response["Location"].endswith(f"?shared={link.code}")
    page = client.get(response["Location"]).content.decode()
    assert f"http://testserver/m/{link.code}" in page and "<svg" in page


def test_bad_shares_answer_400_or_404(org, login):
    material = MaterialFactory()
    other = CustomerFactory(owner=org.staff_b)
    client = login(org.staff_a)
    for data in [{}, {"customer": "x"}, {"customer": "1", "channel": ChannelFactory().pk}]:
        response = client.post(share_url(material), data, **HTMX)
        assert response.status_code == 400, data
    assert client.post(share_url(material), {"channel": 99999}, **HTMX).status_code == 400
    # A customer outside the viewer's scope looks like an unknown one.
    assert client.post(share_url(material), {"customer": other.pk}, **HTMX).status_code == 404
    archived = MaterialFactory(status=Material.Status.ARCHIVED)
    response = client.post(share_url(archived), {"customer": other.pk}, **HTMX)
    assert response.status_code == 404
    mine = CustomerFactory(owner=org.staff_a)
    response = client.post(share_url(archived), {"customer": mine.pk}, **HTMX)
    assert response.status_code == 400 and "已发布" in response.content.decode()
    assert not TrackedLink.objects.exists()


def test_the_material_page_shows_opens_and_stats_within_scope(org, login):
    material = MaterialFactory(title="新品手册")
    zhang = CustomerFactory(owner=org.staff_a, name="张三")
    li = CustomerFactory(owner=org.staff_a2, name="李四")
    wang = CustomerFactory(owner=org.staff_b, name="王五")
    open_link(tracked_link_for(material=material, staff=org.staff_a, customer=zhang), 60)
    open_link(tracked_link_for(material=material, staff=org.staff_a, customer=zhang), 120)
    open_link(tracked_link_for(material=material, staff=org.staff_a2, customer=li), 30)
    open_link(tracked_link_for(material=material, staff=org.staff_b, customer=wang), 10)

    admin = login(org.admin).get(detail_url(material)).context
    assert (admin["stats"].opens, admin["stats"].customers, admin["stats"].avg_seconds) == (
        4,
        3,
        55,
    )
    manager = login(org.manager_a).get(detail_url(material))
    stats = manager.context["stats"]
    assert (stats.opens, stats.customers, stats.avg_seconds) == (3, 2, 70)
    assert [(r.name, r.opens, r.customers, r.avg_seconds) for r in stats.per_staff] == [
        (org.staff_a.name, 2, 1, 90),
        (org.staff_a2.name, 1, 1, 30),
    ]
    html = manager.content.decode()
    assert "张三" in html and "李四" in html and "王五" not in html
    assert "1分30秒" in html  # staff_a's average reading time
    staff = login(org.staff_a).get(detail_url(material)).context["stats"]
    assert (staff.opens, staff.customers) == (2, 1)


def test_the_material_page_uses_a_fixed_number_of_queries(org, login):
    material = MaterialFactory()
    client = login(org.manager_a)

    def add_opens(n: int) -> None:
        for _ in range(n):
            customer = CustomerFactory(owner=org.staff_a)
            open_link(tracked_link_for(material=material, staff=org.staff_a, customer=customer))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(detail_url(material)).status_code == 200
        return len(captured)

    add_opens(2)
    before = queries()
    add_opens(15)
    assert queries() == before
    pager = client.get(detail_url(material), {"after": 10**6}, **HTMX)
    assert pager.status_code == 200 and 'id="material-views"' in pager.content.decode()
    assert client.get(detail_url(material), {"after": "x"}).status_code == 200


@pytest.mark.parametrize("who,sees", [("admin", True), ("manager_b", True), ("staff_a", False)])
def test_drafts_are_for_leads_and_their_owner(org, login, who, sees):
    draft = MaterialFactory(title="草稿素材", status=Material.Status.DRAFT, owner=org.manager_a)
    own_draft = MaterialFactory(title="我的草稿", status=Material.Status.DRAFT, owner=org.staff_a)
    client = login(getattr(org, who))
    preview = reverse("content:material_preview", args=[draft.pk])
    assert client.get(preview).status_code == (200 if sees else 404)
    assert client.get(detail_url(draft)).status_code == (200 if sees else 404)
    listing = client.get(reverse("content:materials")).content.decode()
    assert ("草稿素材" in listing) is sees
    assert "预览" in listing and "预检结果" not in listing  # not the import's "Preview"
    if who == "staff_a":
        assert "我的草稿" in listing
        own = reverse("content:material_preview", args=[own_draft.pk])
        assert client.get(own).status_code == 200
