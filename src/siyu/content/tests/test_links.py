"""Tracked links: one per (material, staff, customer or channel), the public page for each
kind without JavaScript, views counted once per visit and never for bots, the customer's
event, the reading-time beacon, the sharer's notification, and the hot path's query count."""

import io
import re
import secrets
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import translation

from siyu.content.models import Material, MaterialView, TrackedLink
from siyu.content.public_views import VISIT_COOKIE
from siyu.content.selectors import LINK_CACHE_SECONDS, tracked_link_cache_clear
from siyu.content.services import material_update, tracked_link_for
from siyu.content.tests.factories import MaterialFactory
from siyu.core.errors import DomainError
from siyu.customers.services import customers_merge
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory
from siyu.events.models import Event, EventType
from siyu.notifications.models import Notification

real_monotonic = time.monotonic
PHONE = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0"}


@pytest.fixture
def customer(org):
    return CustomerFactory(owner=org.staff_a, name="张三")


@pytest.fixture
def article(org):
    return MaterialFactory(
        kind=Material.Kind.ARTICLE,
        title="春季护肤指南",
        url="",
        body="<p>第一段</p><p><strong>第二段</strong></p>",
        owner=org.manager_a,
    )


@pytest.fixture
def opened(client, django_capture_on_commit_callbacks):
    """Open a link like a phone's browser, running the follow-up task as a worker would."""

    def _open(link, *, browser=client, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return browser.get(f"/m/{link.code}", **{**PHONE, **headers})

    return _open


def test_the_same_target_gets_the_same_link(org, customer, article):
    channel = ChannelFactory()
    first = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    assert tracked_link_for(material=article, staff=org.staff_a, customer=customer) == first
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}", first.code)
    others = {
        tracked_link_for(material=article, staff=org.staff_a2, customer=customer),
        tracked_link_for(material=article, staff=org.staff_a, channel=channel),
        tracked_link_for(material=article, staff=org.staff_a),
        tracked_link_for(material=article, staff=None),
    }
    assert first not in others and len(others) == 4
    assert tracked_link_for(material=article, staff=None) in others
    assert TrackedLink.objects.count() == 5


def test_a_link_needs_a_published_material_and_one_target(org, customer):
    draft = MaterialFactory(status=Material.Status.DRAFT)
    with pytest.raises(DomainError):
        tracked_link_for(material=draft, staff=org.staff_a, customer=customer)
    published = MaterialFactory()
    with pytest.raises(DomainError):
        tracked_link_for(
            material=published, staff=org.staff_a, customer=customer, channel=ChannelFactory()
        )
    assert not TrackedLink.objects.exists()


def test_an_article_opens_as_a_page_without_javascript_and_records_the_view(
    org, customer, article, opened
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    response = opened(link)
    html = response.content.decode()
    assert response.status_code == 200
    assert "春季护肤指南" in html and "<strong>第二段</strong>" in html
    assert 'name="viewport"' in html and "<style>" in html and "<link" not in html
    view = MaterialView.objects.get()
    assert (view.customer, view.staff, view.material, view.seconds) == (
        customer,
        org.staff_a,
        article,
        0,
    )
    # The beacon script carries this visit's token; the page reads fine without it.
    assert view.token in html and "sendBeacon" in html
    assert response.cookies[VISIT_COOKIE % link.code].value == view.token
    assert response.cookies[VISIT_COOKIE % link.code]["path"] == f"/m/{link.code}"
    assert response["Cache-Control"] == "private, no-store"
    event = Event.objects.get()
    assert (event.customer, event.type) == (customer, "material_viewed")
    assert event.properties == {
        "material_id": article.pk,
        "material_title": "春季护肤指南",
        "link_code": link.code,
        "staff_id": org.staff_a.pk,
    }
    assert EventType.objects.get(name="material_viewed").label
    link.refresh_from_db()
    assert link.view_count == 1 and link.last_viewed_at == view.opened_at


def test_a_reload_in_the_same_visit_is_one_view_a_new_browser_another(
    org, customer, article, opened
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    opened(link)
    opened(link)  # the test client keeps the visit cookie, like the phone's browser
    assert MaterialView.objects.count() == 1 and Event.objects.count() == 1
    opened(link, browser=Client())
    assert MaterialView.objects.count() == 2 and Event.objects.count() == 2
    link.refresh_from_db()
    assert link.view_count == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_USER_AGENT": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
        {"HTTP_USER_AGENT": "facebookexternalhit/1.1"},
        {"HTTP_USER_AGENT": "curl/8.5.0"},
        {"HTTP_USER_AGENT": ""},
        {"HTTP_SEC_PURPOSE": "prefetch"},
    ],
)
def test_bots_and_prefetchers_get_the_page_but_are_not_counted(
    org, customer, article, opened, headers
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    response = opened(link, **headers)
    assert response.status_code == 200 and "春季护肤指南" in response.content.decode()
    assert "sendBeacon" not in response.content.decode()
    assert not MaterialView.objects.exists() and not Event.objects.exists()
    assert not Notification.objects.exists()


def test_a_channel_link_records_the_view_without_an_event(org, article, opened):
    channel = ChannelFactory(name="小红书")
    link = tracked_link_for(material=article, staff=org.staff_a, channel=channel)
    assert opened(link).status_code == 200
    view = MaterialView.objects.get()
    assert view.customer is None and view.staff == org.staff_a
    assert not Event.objects.exists()
    note = Notification.objects.get()
    assert note.staff == org.staff_a and note.customer is None and "小红书" in note.title


def test_a_product_link_redirects_after_recording(org, customer, opened):
    product = MaterialFactory(url="https://shop.example/p/1?ref=siyu")
    link = tracked_link_for(material=product, staff=org.staff_a, customer=customer)
    response = opened(link)
    assert response.status_code == 302 and response["Location"] == product.url
    assert MaterialView.objects.filter(link=link).count() == 1
    assert Event.objects.filter(customer=customer, type="material_viewed").count() == 1


def test_a_poster_shows_its_image_and_a_file_offers_its_download(
    org, customer, opened, settings, tmp_path, client
):
    settings.MEDIA_ROOT = tmp_path
    poster = MaterialFactory(kind=Material.Kind.POSTER, url="", title="海报")
    poster.image = SimpleUploadedFile("poster.png", b"\x89PNG-poster")
    poster.save()
    brochure = MaterialFactory(kind=Material.Kind.FILE, url="", title="手册")
    brochure.file = SimpleUploadedFile("brochure.pdf", b"%PDF-1.4 brochure")
    brochure.save()
    poster_link = tracked_link_for(material=poster, staff=org.staff_a, customer=customer)
    file_link = tracked_link_for(material=brochure, staff=org.staff_a, customer=customer)

    html = opened(poster_link).content.decode()
    assert f'<img src="/m/{poster_link.code}/image"' in html
    image = client.get(f"/m/{poster_link.code}/image")
    assert b"".join(image.streaming_content) == b"\x89PNG-poster"

    html = opened(file_link).content.decode()
    assert f'href="/m/{file_link.code}/file"' in html and "手册" in html
    download = client.get(f"/m/{file_link.code}/file")
    assert b"".join(download.streaming_content) == b"%PDF-1.4 brochure"
    assert "attachment" in download["Content-Disposition"]
    # A link reaches only its own material's pieces.
    assert client.get(f"/m/{file_link.code}/image").status_code == 404
    assert MaterialView.objects.count() == 2


def test_unknown_links_are_404_and_withdrawn_materials_410(org, customer, article, client):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    missing = client.get("/m/NoSuchCode", **PHONE)
    assert missing.status_code == 404 and "<h1>" in missing.content.decode()
    assert client.get("/m/bad.code!", **PHONE).status_code == 404
    Material.objects.filter(pk=article.pk).update(status=Material.Status.ARCHIVED)
    tracked_link_cache_clear()  # as after LINK_CACHE_SECONDS
    gone = client.get(f"/m/{link.code}", **PHONE)
    assert gone.status_code == 410 and "春季护肤指南" not in gone.content.decode()
    assert client.get(f"/m/{link.code}/image").status_code == 404
    assert not MaterialView.objects.exists()


def test_the_public_page_needs_no_login_and_a_fixed_number_of_queries(
    org, customer, article, client, django_assert_num_queries
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    # First open: the link with its material, and the view's INSERT.
    with django_assert_num_queries(2):
        assert client.get(f"/m/{link.code}", **PHONE).status_code == 200
    # A reload in the same visit: nothing, the process kept the link for a few seconds.
    with django_assert_num_queries(0):
        assert client.get(f"/m/{link.code}", **PHONE).status_code == 200
    # Once that has expired: the link with its material.
    tracked_link_cache_clear()
    with django_assert_num_queries(1):
        assert client.get(f"/m/{link.code}", **PHONE).status_code == 200


def test_a_withdrawn_material_is_gone_once_the_kept_link_expires(
    org, customer, article, client, monkeypatch
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    assert client.get(f"/m/{link.code}", **PHONE).status_code == 200
    Material.objects.filter(pk=article.pk).update(status=Material.Status.ARCHIVED)
    # Archived in another process: this one still has the link for LINK_CACHE_SECONDS.
    assert client.get(f"/m/{link.code}", **PHONE).status_code == 200
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + LINK_CACHE_SECONDS + 1)
    assert client.get(f"/m/{link.code}", **PHONE).status_code == 410


def test_editing_a_material_here_shows_at_once(org, customer, article, client):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    assert "春季护肤指南" in client.get(f"/m/{link.code}", **PHONE).content.decode()
    material_update(
        material=article,
        kind="article",
        title="夏季护肤指南",
        body="<p>防晒</p>",
        status="published",
    )
    assert "夏季护肤指南" in client.get(f"/m/{link.code}", **PHONE).content.decode()


def beacon(client, link, **data):
    return client.post(f"/m/{link.code}/beacon", data, **PHONE)


def test_the_beacon_raises_the_reading_time_and_updates_the_notification(
    org, customer, article, opened, client, django_capture_on_commit_callbacks
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    opened(link)
    token = MaterialView.objects.get().token
    with django_capture_on_commit_callbacks(execute=True):
        assert beacon(client, link, token=token, seconds="130").status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert beacon(client, link, token=token, seconds="20").status_code == 204  # never lower
    view = MaterialView.objects.get()
    assert view.seconds == 130
    link.refresh_from_db()
    assert link.seconds_read == 130
    note = Notification.objects.get(staff=org.staff_a, read_at__isnull=True)
    assert note.title == "张三 打开了《春季护肤指南》 第1次，累计阅读 2分10秒"
    assert note.count == 1  # a longer read rewrites the text; it is not another open
    with django_capture_on_commit_callbacks(execute=True):
        assert beacon(client, link, token=token, seconds="999999").status_code == 204
    view.refresh_from_db()
    assert view.seconds == 3600  # clamped


def test_the_beacon_refuses_bad_tokens_and_values(org, customer, article, opened, client):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    other = tracked_link_for(material=article, staff=org.staff_a2, customer=customer)
    opened(link)
    token = MaterialView.objects.get().token
    cases = [
        ({"seconds": "10"}, 400, "token"),
        ({"token": "short", "seconds": "10"}, 400, "token"),
        ({"token": token, "seconds": "ten"}, 400, "seconds"),
        ({"token": token, "seconds": "-5"}, 400, "seconds"),
        ({"token": token, "seconds": ""}, 400, "seconds"),
        ({"token": "x" * 22, "seconds": "10"}, 404, "token"),
    ]
    for data, status, reason in cases:
        response = beacon(client, link, **data)
        assert response.status_code == status and reason in response.content.decode(), data
    # The token is bound to its link.
    assert beacon(client, other, token=token, seconds="10").status_code == 404
    assert client.get(f"/m/{link.code}/beacon").status_code == 405
    assert MaterialView.objects.get().seconds == 0


def test_the_sharer_is_notified_once_per_link_while_unread(org, customer, article, opened):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    opened(link)
    opened(link, browser=Client())
    opened(link, browser=Client())
    note = Notification.objects.get()
    assert (note.staff, note.kind, note.key, note.customer) == (
        org.staff_a,
        "material_viewed",
        f"material_viewed:{link.pk}",
        customer,
    )
    assert note.count == 3
    assert note.title == "张三 打开了《春季护肤指南》 第3次，累计阅读 0秒"
    assert note.url == f"/content/materials/{article.pk}/"


def test_a_link_without_a_sharer_notifies_the_material_owner(customer, article, opened):
    link = tracked_link_for(material=article, staff=None, customer=customer)
    opened(link)
    assert Notification.objects.get().staff == article.owner


def wsgi_get(path: str, method="GET", **headers) -> tuple[str, list[tuple[str, str]], bytes]:
    """A request through siyu.wsgi.application, as the server (siyu serve) makes it."""
    from siyu.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        **headers,
    }
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = status, response_headers

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):  # optional in WSGI
                result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return started["status"], started["headers"], body


def test_the_wsgi_application_serves_the_link_without_the_console_middleware(
    org, customer, article, django_assert_num_queries
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    translation.activate("en")  # what a console request may leave behind in a worker
    try:
        with django_assert_num_queries(2):
            status, headers, body = wsgi_get(f"/m/{link.code}", **PHONE)
    finally:
        translation.deactivate()
    assert status == "200 OK" and "春季护肤指南" in body.decode()
    assert MaterialView.objects.filter(link=link).count() == 1
    # No session, CSRF or language cookie; the visit cookie only; security headers still set.
    cookies = [value.strip() for name, value in headers if name == "Set-Cookie"]
    assert len(cookies) == 1 and cookies[0].startswith(VISIT_COOKIE % link.code)
    assert ("X-Frame-Options", "DENY") in headers
    assert ("X-Content-Type-Options", "nosniff") in headers
    status, _, body = wsgi_get("/m/NoSuchCode", **PHONE)
    assert status == "404 Not Found" and "链接不存在" in body.decode()
    # Other paths still go through the console's stack (login required).
    status, headers, _ = wsgi_get("/content/materials/")
    assert status == "302 Found" and "/login/" in dict(headers)["Location"]


def test_the_page_served_from_wsgi_puts_each_visit_s_own_token_in_the_kept_page(
    org, customer, article
):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    name = VISIT_COOKIE % link.code
    pages = {}
    for _ in range(2):  # two phones: two visits, the second from the page this process kept
        status, headers, body = wsgi_get(f"/m/{link.code}", **PHONE)
        assert status == "200 OK"
        assert dict(headers)["Content-Length"] == str(len(body))
        assert dict(headers)["Cache-Control"] == "private, no-store"
        cookie = dict(headers)["Set-Cookie"].strip()
        assert (
            f"Path=/m/{link.code}" in cookie and "HttpOnly" in cookie and "Max-Age=1800" in cookie
        )
        token = cookie.split(";", 1)[0].removeprefix(f"{name}=")
        pages[token] = body.decode()
    assert set(pages) == set(MaterialView.objects.values_list("token", flat=True))
    (first, first_page), (second, second_page) = pages.items()
    assert f'token:"{first}"' in first_page and second not in first_page
    assert f'token:"{second}"' in second_page and first not in second_page
    assert first_page.replace(first, second) == second_page
    # The same page as the view serves through Django's handler (the test client).
    served = Client().get(f"/m/{link.code}", **PHONE).content.decode()
    assert served.replace(MaterialView.objects.latest("pk").token, first) == first_page
    # A reload in the visit: its own token again, no new view, no cookie.
    status, headers, body = wsgi_get(f"/m/{link.code}", HTTP_COOKIE=f"{name}={first}", **PHONE)
    assert f'token:"{first}"' in body.decode() and "Set-Cookie" not in dict(headers)
    # A bot: the page without the beacon, not counted.
    status, headers, body = wsgi_get(f"/m/{link.code}", HTTP_USER_AGENT="curl/8.5.0")
    assert status == "200 OK" and "春季护肤指南" in body.decode()
    assert "sendBeacon" not in body.decode() and "Set-Cookie" not in dict(headers)
    assert MaterialView.objects.count() == 3


def test_other_requests_for_a_link_still_go_through_django_s_handler(org, customer, article):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    status, _, body = wsgi_get(f"/m/{link.code}", method="HEAD", **PHONE)
    assert status == "200 OK" and "sendBeacon" not in body.decode()
    status, _, body = wsgi_get(f"/m/{link.code}", method="POST", **PHONE)
    assert status == "405 Method Not Allowed"
    status, _, body = wsgi_get(f"/m/{link.code}/image", **PHONE)
    assert status == "404 Not Found" and "链接不存在" in body.decode()
    assert not MaterialView.objects.exists()


def test_a_failure_on_the_lean_path_gets_django_s_500(org, customer, article, monkeypatch):
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)

    def broken(nbytes):
        raise OSError("no entropy")

    monkeypatch.setattr(secrets, "token_urlsafe", broken)
    status, _, _ = wsgi_get(f"/m/{link.code}", **PHONE)
    assert status == "500 Internal Server Error"
    assert not MaterialView.objects.exists()


def test_views_follow_a_customer_merge(org, article, opened):
    absorbed = CustomerFactory(owner=org.staff_a, name="张三")
    survivor = CustomerFactory(owner=org.staff_a, name="张三丰")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=absorbed)
    opened(link)
    customers_merge(survivor=survivor, absorbed=[absorbed])
    assert MaterialView.objects.get().customer == survivor  # moved by the merge
    # The link shared before the merge still opens, and the new visit is the survivor's.
    assert opened(link, browser=Client()).status_code == 200
    assert set(MaterialView.objects.values_list("customer", flat=True)) == {survivor.pk}
    assert Event.objects.filter(customer=survivor, type="material_viewed").count() == 2
    assert Notification.objects.get().customer == survivor
