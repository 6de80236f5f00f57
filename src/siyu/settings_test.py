"""Settings for the test suite: a throw-away var dir, tasks run inline, fast password hashing."""

import os
import tempfile

os.environ.setdefault("SIYU_VAR_DIR", tempfile.mkdtemp(prefix="siyu-test-"))
os.environ["SIYU_HUEY_IMMEDIATE"] = "1"

from siyu.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
