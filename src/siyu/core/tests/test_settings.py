"""Settings come from SIYU_* variables; each case loads them fresh in a child process."""

import json
import os
import subprocess
import sys
import uuid

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
from huey.contrib.djhuey import HUEY
out = {"engine": settings.DATABASES["default"]["ENGINE"], "huey": type(HUEY).__name__,
       "tz": settings.TIME_ZONE, "lang": settings.LANGUAGE_CODE, "debug": settings.DEBUG}
if "sqlite" in out["engine"]:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        out["journal"] = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        out["busy_timeout"] = cursor.fetchone()[0]
else:
    HUEY.storage.enqueue(b"probe")
    out["queued"] = HUEY.storage.dequeue().decode()
print(json.dumps(out))
"""


def load(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIYU_")}
    clean.update(DJANGO_SETTINGS_MODULE="siyu.settings", SIYU_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=60
    )


def test_with_no_variables_siyu_runs_embedded_on_sqlite_in_wal_mode(tmp_path):
    run = load(tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["engine"] == "django.db.backends.sqlite3"
    assert (out["journal"], out["busy_timeout"]) == ("wal", 30000)
    assert out["huey"] == "SqliteHuey"
    assert (out["tz"], out["lang"], out["debug"]) == ("Asia/Shanghai", "zh-hans", False)
    assert (tmp_path / "siyu.sqlite3").exists() and (tmp_path / "secret_key").exists()


def test_a_redis_url_moves_the_queue_to_redis(tmp_path):
    name = f"siyu-test-{uuid.uuid4().hex}"
    run = load(
        tmp_path,
        SIYU_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        SIYU_REDIS_URL="redis://127.0.0.1:6379/15",
        SIYU_TIME_ZONE="UTC",
        SIYU_DEBUG="yes",
        SIYU_QUEUE_NAME=name,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["engine"] == "django.db.backends.postgresql"
    assert (out["huey"], out["queued"]) == ("RedisHuey", "probe")
    assert (out["tz"], out["debug"]) == ("UTC", True)


def test_malformed_values_stop_start_up_naming_the_variable(tmp_path):
    run = load(tmp_path, SIYU_DEBUG="maybe")
    assert run.returncode != 0
    assert "SIYU_DEBUG must be a boolean" in run.stderr
    run = load(tmp_path, SIYU_DATABASE_URL="nonsense://x")
    assert run.returncode != 0
    assert "SIYU_DATABASE_URL" in run.stderr
