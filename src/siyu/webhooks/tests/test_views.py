"""The webhook console pages: admins only, the secret shown once, edits, pause and resume,
rotation and deletion audited, a test ping, and a delivery log at a fixed query count."""

import pytest
from django.urls import reverse

from siyu.core.models import AuditLog
from siyu.webhooks.models import WebhookDelivery, WebhookSubscription
from siyu.webhooks.services import webhook_events_enqueue, webhook_subscription_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def subscription(org, receiver):
    return webhook_subscription_create(
        actor=org.admin.user, url=receiver.url, event_types=["customer.created"]
    )


def queue(count: int) -> None:
    webhook_events_enqueue(
        event_type="customer.created", items=lambda: [{"n": n} for n in range(count)]
    )


@pytest.mark.parametrize("who", ["manager_a", "staff_a"])
def test_only_admins_open_the_pages(org, login, subscription, who):
    client = login(getattr(org, who))
    queue(1)
    delivery = WebhookDelivery.objects.get()
    pk = subscription.pk
    for name, args in [
        ("webhooks:list", []),
        ("webhooks:create", []),
        ("webhooks:detail", [pk]),
        ("webhooks:delivery", [delivery.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404
    for name, args in [
        ("webhooks:create", []),
        ("webhooks:set_active", [pk]),
        ("webhooks:rotate", [pk]),
        ("webhooks:ping", [pk]),
        ("webhooks:delete", [pk]),
        ("webhooks:retry", [delivery.pk]),
    ]:
        assert client.post(reverse(name, args=args), {"url": "x"}).status_code == 404
    assert WebhookSubscription.objects.get().secret == subscription.secret
    assert reverse("webhooks:list") not in client.get(reverse("console:home")).content.decode()


def test_logged_out_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("webhooks:list"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_an_admin_creates_a_webhook_and_sees_its_secret_only_once(org, login, receiver):
    client = login(org.admin)
    assert reverse("webhooks:list") in client.get(reverse("console:home")).content.decode()
    response = client.post(
        reverse("webhooks:create"),
        {"url": receiver.url, "description": "ERP", "event_types": ["order.paid", "tag.added"]},
    )
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    assert subscription.event_types == ["order.paid", "tag.added"]
    assert subscription.created_by == org.admin.user
    for page in (reverse("webhooks:list"), reverse("webhooks:detail", args=[subscription.pk])):
        html = client.get(page).content.decode()
        assert receiver.url in html and subscription.secret not in html
    assert subscription.secret_hint in html
    audit = AuditLog.objects.get(action=AuditLog.Action.CREATE)
    assert audit.target_id == str(subscription.pk) and audit.actor == org.admin.user


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"url": "ftp://example.com", "event_types": ["*"]}, "http://"),
        ({"url": "http://127.0.0.1/x", "event_types": ["*"]}, "public addresses only"),
        ({"url": "https://example.com/x", "event_types": ["customer.deleted"]}, "customer.deleted"),
        ({"url": "https://example.com/x"}, "required"),
        ({"event_types": ["*"]}, "required"),
    ],
)
def test_bad_input_answers_400_with_the_reason(org, login, settings, data, reason):
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = False
    response = login(org.admin).post(reverse("webhooks:create"), data)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_an_admin_edits_the_types_pauses_resumes_rotates_and_deletes(org, login, subscription):
    client = login(org.admin)
    detail = reverse("webhooks:detail", args=[subscription.pk])
    response = client.post(detail, {"description": "CRM", "event_types": ["*"]})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.event_types == ["*"] and subscription.description == "CRM"
    assert client.post(detail, {"event_types": ["nope"]}).status_code == 400

    client.post(reverse("webhooks:set_active", args=[subscription.pk]), {"active": "0"})
    subscription.refresh_from_db()
    assert not subscription.active and "admin" in subscription.disabled_reason
    assert subscription.disabled_reason in client.get(detail).content.decode()
    client.post(reverse("webhooks:set_active", args=[subscription.pk]), {"active": "1"})
    subscription.refresh_from_db()
    assert subscription.active and subscription.disabled_reason == ""

    old = subscription.secret
    response = client.post(reverse("webhooks:rotate", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.secret in response.content.decode()

    assert client.post(reverse("webhooks:delete", args=[subscription.pk])).status_code == 302
    assert not WebhookSubscription.objects.exists()
    actions = list(AuditLog.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["create", "update", "update", "delete"]


def test_a_test_ping_reaches_the_receiver_and_reports_the_answer(org, login, subscription):
    client = login(org.admin)
    response = client.post(reverse("webhooks:ping", args=[subscription.pk]), follow=True)
    assert "HTTP 200" in response.content.decode()
    assert WebhookDelivery.objects.get().event_type == "ping"


def test_the_delivery_log_pages_at_a_fixed_number_of_queries(
    org, login, subscription, django_assert_num_queries, settings
):
    settings.SIYU_PAGE_SIZE = 5
    client = login(org.admin)
    url = reverse("webhooks:detail", args=[subscription.pk])
    queue(1)
    client.get(url)  # warm up: session, translations
    with django_assert_num_queries(5) as few:
        client.get(url, **HTMX)
    queue(20)
    with django_assert_num_queries(5):
        page = client.get(url, **HTMX)
    assert few and page.content.decode().count('id="delivery-') == 5
    older = client.get(url, {"after": page.context["page"].next_cursor}, **HTMX)
    assert older.content.decode().count('id="delivery-') == 5
    failed = client.get(url, {"status": "failed"}, **HTMX).content.decode()
    assert "delivery-" not in failed.replace('id="deliveries"', "")
    assert client.get(url, {"status": "bogus", "after": "x"}).status_code == 200


def test_a_delivery_shows_its_payload_and_a_dead_one_can_be_retried(org, login, subscription):
    client = login(org.admin)
    queue(1)
    delivery = WebhookDelivery.objects.get()
    page = client.get(reverse("webhooks:delivery", args=[delivery.pk])).content.decode()
    assert str(delivery.event_id) in page and "&quot;n&quot;: 0" in page
    retry = reverse("webhooks:retry", args=[delivery.pk])
    response = client.post(retry, follow=True)  # pending: refused with the reason
    assert "only a failed or dead delivery" in response.content.decode()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="dead")
    response = client.post(retry)
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert client.get(reverse("webhooks:delivery", args=[999999])).status_code == 404
    assert client.post(reverse("webhooks:retry", args=[999999])).status_code == 404
    assert client.get(reverse("webhooks:detail", args=[999999])).status_code == 404


def test_the_list_costs_the_same_queries_for_any_number_of_webhooks(
    org, login, receiver, django_assert_num_queries
):
    client = login(org.admin)
    url = reverse("webhooks:list")
    webhook_subscription_create(actor=org.admin.user, url=receiver.url, event_types=["*"])
    client.get(url)
    with django_assert_num_queries(4):
        client.get(url)
    for _ in range(5):
        webhook_subscription_create(actor=org.admin.user, url=receiver.url, event_types=["*"])
    queue(3)
    with django_assert_num_queries(4):
        html = client.get(url).content.decode()
    assert html.count('id="webhook-') == 6
