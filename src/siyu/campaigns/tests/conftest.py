"""Fixtures for the campaign engine: a fixed clock, an audience, and real peers — an SMTP
server (aiosmtpd) and an SMS gateway (a threading HTTP server speaking docs/campaigns.md)."""

import json
import socket
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from siyu.campaigns import services
from siyu.channels.sms import sign
from siyu.core.tests import local_server
from siyu.customers.models import Identity
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.segment_services import segment_create

# 10:00 in Shanghai: outside the quiet hours.
NOW = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
SHANGHAI_CITY = {"attr": "city", "op": "eq", "value": "上海"}


@pytest.fixture
def segment(org):
    return segment_create(name="上海客户", definition=SHANGHAI_CITY)


@pytest.fixture
def people(org):
    """Three Shanghai customers owned by staff A, each with a phone and an e-mail address."""
    made = []
    for n in range(3):
        customer = CustomerFactory(
            name=f"李{n}", city="上海", owner=org.staff_a, phone=f"+8613900000{n:03d}"
        )
        Identity.objects.create(
            customer=customer, kind=Identity.Kind.EMAIL, value=f"li{n}@example.com"
        )
        made.append(customer)
    return made


@pytest.fixture
def make_campaign(org, segment):
    """A campaign with one step per channel given, scheduled unless draft=True."""

    def _make(
        *channels,
        kind="broadcast",
        draft=False,
        variants=None,
        delays=None,
        now=NOW,
        webhook=None,
        **fields,
    ):
        fields.setdefault("segment", segment)
        campaign = services.campaign_create(
            name=f"活动 {kind}", kind=kind, owner=org.admin, **fields
        )
        for index, channel in enumerate(channels or ("sms",)):
            services.step_add(
                campaign=campaign,
                channel=channel,
                delay_minutes=(delays or [0] * 9)[index],
                webhook=webhook,
                variants=variants
                or [
                    {
                        "subject": "{customer.name}的礼物",
                        "body": "{customer.name}您好，{staff.name}",
                    }
                ],
            )
        if not draft:
            services.campaign_schedule(campaign=campaign, now=now)
        campaign.refresh_from_db()
        return campaign

    return _make


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free local port; settings point Django's backend at it."""
    inbox = _Inbox()
    with socket.socket() as probe:  # a free port: the controller checks its own by connecting
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


class Gateway:
    """The SMS gateway's state: what it received (deduplicated by idempotency key) and which
    numbers answer with which error."""

    def __init__(self):
        self.received: dict[str, dict] = {}
        self.posts = 0
        self.errors: dict[str, tuple[int, str]] = {}  # phone → (HTTP status, code)
        self.lock = threading.Lock()


API_KEY, SECRET = "test-key", "test-secret"


@pytest.fixture
def sms_gateway(settings):
    gateway = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with gateway.lock:
                gateway.posts += 1
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._answer(401, {"code": "bad_key", "message": "unknown API key"})
            expected = sign(SECRET, self.headers["X-Siyu-Timestamp"], body)
            if self.headers.get("X-Siyu-Signature") != expected:
                return self._answer(401, {"code": "bad_signature", "message": "signature"})
            data = json.loads(body)
            if data["to"] in gateway.errors:
                status, code = gateway.errors[data["to"]]
                return self._answer(status, {"code": code, "message": "refused"})
            with gateway.lock:
                gateway.received.setdefault(data["idempotency_key"], data)
            return self._answer(200, {"id": "sms-" + data["idempotency_key"]})

    server = local_server.serve(Handler)
    settings.SIYU_SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_address[1]}/send"
    settings.SIYU_SMS_API_KEY, settings.SIYU_SMS_SECRET = API_KEY, SECRET
    yield gateway
    server.shutdown()
    server.server_close()


class Sink:
    """A webhook receiver: the bodies it accepted, by idempotency key, and every post."""

    def __init__(self):
        self.received: dict[str, dict] = {}
        self.posts = 0
        self.bad_signatures = 0
        self.status = 200
        self.lock = threading.Lock()


def start_sink(secret: str) -> tuple[Sink, ThreadingHTTPServer]:
    from siyu.webhooks.signing import SignatureError, verify

    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: nothing was delivered
                self.close_connection = True
                return
            status = sink.status
            try:
                verify(secret, self.headers.get("X-Siyu-Signature", ""), body)
            except SignatureError:
                status = 400
                with sink.lock:
                    sink.bad_signatures += 1
            with sink.lock:
                sink.posts += 1
                if status == 200:
                    data = json.loads(body)
                    assert data["idempotency_key"] == self.headers["X-Siyu-Delivery"]
                    sink.received.setdefault(data["idempotency_key"], data)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = local_server.serve(Handler)
    return sink, server


@pytest.fixture
def webhook_sink(settings, db):
    """A local webhook receiver and a subscription pointing at it (private addresses allowed)."""
    from siyu.webhooks.models import WebhookSubscription
    from siyu.webhooks.signing import new_secret

    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = True
    secret = new_secret()
    sink, server = start_sink(secret)
    sink.subscription = WebhookSubscription.objects.create(
        url=f"http://127.0.0.1:{server.server_address[1]}/hook", secret=secret, event_types=[]
    )
    yield sink
    server.shutdown()
    server.server_close()
