"""A real HTTP receiver on 127.0.0.1 for webhook tests, and private addresses allowed."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from siyu.core.tests import local_server
from siyu.webhooks.signing import SignatureError, verify


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next queued (status, delay seconds), then 200 for ever."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, float]] = field(default_factory=list)
    secret: str = ""

    def answer(self, *answers: int | tuple[int, float]) -> None:
        self.answers.extend(a if isinstance(a, tuple) else (a, 0.0) for a in answers)

    def verified(self, secret: str) -> list[dict]:
        """The bodies of every request, each checked against its signature header."""
        out = []
        for request in self.requests:
            verify(secret, request.headers["X-Siyu-Signature"], request.body)
            out.append(request.json)
        return out


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.SIYU_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                status, delay = state.answers.pop(0) if state.answers else (200, 0.0)
            time.sleep(delay)
            payload = b'{"ok": true}' if status < 400 else b"upstream broke"
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, *args):
            pass

    server = local_server.serve(Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


__all__ = ["Receiver", "SignatureError"]
