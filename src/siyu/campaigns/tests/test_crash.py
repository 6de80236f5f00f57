"""Kill a sending worker with SIGKILL in the middle of a 5,000-delivery campaign to a local
webhook sink, start another: every delivery reaches the sink exactly once by idempotency key.

The workers are real processes on their own database (a SQLite file, or a fresh PostgreSQL
database when the suite runs on PostgreSQL), so nothing of the test's transaction is shared.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from siyu.campaigns.tests.conftest import start_sink
from siyu.webhooks.signing import new_secret

COUNT = 5_000
SRC = Path(__file__).resolve().parents[3]


def _environment(tmp_path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "siyu.settings",
        "PYTHONPATH": str(SRC),
        "SIYU_VAR_DIR": str(tmp_path),
        "SIYU_QUIET_HOURS": "",  # the test runs at any hour
        "SIYU_CAMPAIGN_LEASE_SECONDS": "3",
        "SIYU_WEBHOOKS_ALLOW_PRIVATE": "1",
        "SIYU_HUEY_IMMEDIATE": "0",
    }
    env.pop("SIYU_DATABASE_URL", None)
    if connection.vendor == "postgresql":
        base = django_settings.DATABASES["default"]
        name = "siyu_campaigns_crash"
        dsn = f"host={base['HOST']} port={base['PORT'] or 5432} user={base['USER']} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        env["SIYU_DATABASE_URL"] = (
            f"postgres://{base['USER']}@{base['HOST']}:{base['PORT'] or 5432}/{name}"
        )
    return env


def _run(env, *args) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


@pytest.mark.django_db
def test_a_killed_sender_loses_and_doubles_nothing(tmp_path):
    secret = new_secret()
    sink, server = start_sink(secret)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    env = _environment(tmp_path)
    try:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "-v0"], env=env, check=True, timeout=300
        )
        seeded = _run(env, "siyu.campaigns.tests.killrun", "seed", str(COUNT), url, secret)
        assert seeded["planned"] == COUNT

        first = subprocess.Popen(
            [sys.executable, "-m", "siyu.campaigns.tests.killrun", "work"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while len(sink.received) < COUNT // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = len(sink.received)
        assert 0 < at_kill < COUNT

        finished = _run(env, "siyu.campaigns.tests.killrun", "work")
    finally:
        server.shutdown()
        server.server_close()

    assert finished["statuses"] == {"sent": COUNT}
    assert len(sink.received) == COUNT  # every key once: nothing lost
    assert sink.bad_signatures == 0
    assert len({body["customer_id"] for body in sink.received.values()}) == COUNT
    # Posts beyond COUNT are the batch in flight when the worker died, sent again under the
    # same keys after the lease; the receiver's dedupe makes them harmless.
    assert sink.posts - COUNT <= int(os.environ.get("KILLRUN_BATCH", "200"))
