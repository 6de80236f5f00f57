"""The webhook channel against a local receiver, and the asynchronous (accepted) path."""

from collections.abc import Sequence
from datetime import timedelta

import pytest

from siyu.campaigns.models import Delivery
from siyu.campaigns.services import (
    campaign_plan_due,
    deliveries_poll_accepted,
    deliveries_send_due,
    delivery_result_record,
)
from siyu.campaigns.tests.conftest import NOW
from siyu.channels import base
from siyu.channels.base import ChannelAdapter, Message, Result
from siyu.core.tests import local_server

pytestmark = pytest.mark.django_db


def test_webhook_posts_signed_json_with_the_idempotency_key(make_campaign, people, webhook_sink):
    campaign = make_campaign("webhook", webhook=webhook_sink.subscription)
    campaign_plan_due(now=NOW)

    summary = deliveries_send_due(now=NOW)

    assert summary.sent == 3
    assert webhook_sink.bad_signatures == 0
    row = Delivery.objects.get(campaign=campaign, customer=people[0])
    body = webhook_sink.received[row.idempotency_key]
    assert body == {
        "idempotency_key": row.idempotency_key,
        "campaign_id": campaign.pk,
        "step_id": row.step_id,
        "variant": "A",
        "customer_id": people[0].pk,
        "staff_id": people[0].owner_id,
        "subject": "李0的礼物",
        "text": row.rendered_text,
    }


def test_a_webhook_answering_5xx_is_retried_and_4xx_fails(make_campaign, people, webhook_sink):
    campaign = make_campaign("webhook", webhook=webhook_sink.subscription)
    campaign_plan_due(now=NOW)
    webhook_sink.status = 503
    deliveries_send_due(now=NOW)
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "pending"
    }

    webhook_sink.status = 410
    deliveries_send_due(now=NOW + timedelta(minutes=1))

    rows = Delivery.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", "error")) == {("failed", "HTTP 410")}


def test_a_webhook_to_a_private_address_is_refused_unless_allowed(
    make_campaign, people, webhook_sink, settings
):
    campaign = make_campaign("webhook", webhook=webhook_sink.subscription)
    campaign_plan_due(now=NOW)
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = False

    deliveries_send_due(now=NOW)

    assert webhook_sink.posts == 0
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "failed"
    }


class MassMessage(ChannelAdapter):
    """A stand-in for a platform that takes a job now and reports per recipient later, as
    WeCom mass messages do (add_msg_template, then get_groupmsg_send_result)."""

    name = "sms"  # borrows the SMS addresses: the sender's handling is what is under test
    address_kind = "phone"
    outcomes: dict[str, Result] = {}

    def send(self, messages: Sequence[Message]) -> list[Result]:
        return [Result.accepted(f"job-{m.customer_id}") for m in messages]

    def poll(self, external_ids: Sequence[str]) -> dict[str, Result]:
        return {i: self.outcomes[i] for i in external_ids if i in self.outcomes}


@pytest.fixture
def mass_message():
    base._load_builtin()
    original = base._REGISTRY["sms"]
    base.register(MassMessage)
    MassMessage.outcomes = {}
    yield MassMessage
    base.register(original)


def test_accepted_sends_are_settled_by_poll_or_callback(make_campaign, people, mass_message):
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)

    summary = deliveries_send_due(now=NOW)

    assert summary.accepted == 3
    rows = Delivery.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", flat=True)) == {"accepted"}
    a, b, c = people
    mass_message.outcomes = {
        f"job-{a.pk}": Result.sent(),
        f"job-{b.pk}": Result.failed("not a friend", retryable=False),
    }
    polled = deliveries_poll_accepted(now=NOW + timedelta(minutes=5))
    assert (polled.sent, polled.failed) == (1, 1)
    assert delivery_result_record(channel="sms", external_id=f"job-{c.pk}", result=Result.sent())
    statuses = dict(rows.values_list("customer_id", "status"))
    assert statuses == {a.pk: "sent", b.pk: "failed", c.pk: "sent"}
    failed = rows.get(customer=b)
    assert (failed.error, failed.sent_at) == ("not a friend", None)
    # Accepted counts against the caps while waiting; the failed one no longer does.
    assert rows.get(customer=a).sent_at == NOW


def test_a_webhook_receiver_that_drops_idle_connections_still_gets_every_post_once(settings):
    # Receivers close kept-alive connections when they like (an idle timeout) without saying
    # so; the sender's kept connection then fails on its next use and must post again on a new
    # one, not fail the delivery.
    from http.server import BaseHTTPRequestHandler

    from siyu.channels.webhook import WebhookChannel

    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = True
    keys: list[str] = []

    class Closing(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            keys.append(self.headers["X-Siyu-Delivery"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True  # hang up without "Connection: close"

    server = local_server.serve(Closing)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        for batch in range(3):
            messages = [
                Message(
                    delivery_id=n,
                    idempotency_key=f"k{batch}-{n}",
                    customer_id=n,
                    address="",
                    body="hi",
                    extra={"url": url, "secret": "s"},
                )
                for n in range(20)
            ]
            results = WebhookChannel().send(messages)
            assert [r.outcome for r in results] == [base.Outcome.SENT] * 20
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(keys) == sorted(f"k{b}-{n}" for b in range(3) for n in range(20))
