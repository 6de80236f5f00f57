"""`siyu serve` as production runs it: granian in front of siyu.wsgi, over real HTTP.

The server is a separate process reading a copy of the test database (SQLite) or the test
database itself (PostgreSQL), so the test's data is committed first (transactional_db).
"""

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from django.db import connection

from siyu.cli import _bind
from siyu.content.models import Material, MaterialView
from siyu.content.public_views import VISIT_COOKIE
from siyu.content.services import tracked_link_for
from siyu.content.tests.factories import MaterialFactory
from siyu.customers.tests.factories import CustomerFactory

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0"


def test_bind_reads_host_and_port_and_refuses_anything_else():
    assert _bind("0.0.0.0:8000") == ("0.0.0.0", 8000)
    assert _bind("[::1]:8080") == ("::1", 8080)
    for wrong in ("8000", "127.0.0.1", "127.0.0.1:", "host:http", "127.0.0.1:70000"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:PORT"):
            _bind(wrong)


def test_the_server_s_environment_stays_out_of_the_request(monkeypatch):
    from siyu.wsgi import without_process_environment

    monkeypatch.setenv("SIYU_SECRET_KEY", "not-for-request-meta")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_X_FORWARDED_FOR", "10.9.9.9")
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    # The environ as granian builds it: the process environment, then the request's own keys.
    request = {
        "PATH_INFO": "/m/abc",
        "HTTP_HOST": "scrm.example.com",
        "REMOTE_ADDR": "10.0.0.9",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",  # sent by the client: kept
    }
    without_process_environment(app)({**os.environ, **request}, lambda *args: None)
    assert "SIYU_SECRET_KEY" not in seen and "HTTP_PROXY" not in seen and "PATH" not in seen
    assert seen == request


def _database_url(var_dir) -> str:
    """The test database for the server: PostgreSQL's by name, SQLite's (in memory) copied to
    where an embedded install keeps its file."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    connection.ensure_connection()
    with sqlite3.connect(var_dir / "siyu.sqlite3") as copy:
        connection.connection.backup(copy)
    copy.close()
    return ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(transactional_db, tmp_path):
    """Start `siyu serve` once the test's data is in place; answer its base URL."""
    servers = []

    def _serve() -> str:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIYU_", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="siyu.settings",
            SIYU_VAR_DIR=str(tmp_path),
            SIYU_DATABASE_URL=_database_url(tmp_path),
        )
        argv = ["-m", "siyu.cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        server = subprocess.Popen([sys.executable, *argv], env=env)
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/login/", timeout=1)
                return base
            except httpx.TransportError:
                assert server.poll() is None, "siyu serve exited"
                time.sleep(0.1)
        raise AssertionError("siyu serve did not answer within 30 s")

    yield _serve
    for server in servers:
        server.terminate()
        server.wait(timeout=30)  # raises if it does not stop


def test_siyu_serve_answers_the_link_page_the_beacon_and_the_console_over_http(
    org, served, tmp_path
):
    article = MaterialFactory(
        kind=Material.Kind.ARTICLE,
        title="春季护肤指南",
        url="",
        body="<p>第一段</p>",
        owner=org.manager_a,
    )
    customer = CustomerFactory(owner=org.staff_a, name="张三")
    link = tracked_link_for(material=article, staff=org.staff_a, customer=customer)
    base = served()

    with httpx.Client(base_url=base, headers={"User-Agent": PHONE_UA}) as phone:
        first = phone.get(f"/m/{link.code}")
        assert first.status_code == 200 and "春季护肤指南" in first.text
        assert first.headers["Content-Length"] == str(len(first.content))
        token = first.cookies[VISIT_COOKIE % link.code]
        # The same connection again (keep-alive): a reload in the same visit, no new cookie.
        again = phone.get(f"/m/{link.code}")
        assert again.status_code == 200 and "set-cookie" not in again.headers
        assert f'token:"{token}"' in again.text
        # The beacon finds the view the server recorded.
        read = phone.post(f"/m/{link.code}/beacon", data={"token": token, "seconds": "42"})
        assert read.status_code == 204
        assert phone.get("/m/NoSuchCode").status_code == 404
    # Everything else goes through the console's middleware.
    console = httpx.get(f"{base}/customers/")
    assert console.status_code == 302 and "/login/" in console.headers["Location"]
    login = httpx.get(f"{base}/login/")
    assert login.status_code == 200 and "csrftoken" in login.cookies
    if connection.vendor == "postgresql":
        assert MaterialView.objects.get(link=link).seconds == 42
    else:  # the server wrote to its own copy
        with sqlite3.connect(tmp_path / "siyu.sqlite3") as copy:
            rows = copy.execute(f"SELECT seconds FROM {MaterialView._meta.db_table}").fetchall()
        copy.close()
        assert rows == [(42,)]
