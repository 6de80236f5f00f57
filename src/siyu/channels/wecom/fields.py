"""Secrets at rest: the WeCom credentials are stored encrypted with Fernet (AES-128-CBC and
HMAC-SHA256, from the `cryptography` package) under a key derived from Django's SECRET_KEY
(SIYU_SECRET_KEY). Keys in SECRET_KEY_FALLBACKS still decrypt, so the key can be rotated: set
the new key, move the old one to the fallbacks, and save the connection once.

Stored values carry a "fernet:" prefix; a value without it is a plaintext from before
encryption (read as is, encrypted by the next save or by migration 0012)."""

import base64
import functools
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

log = logging.getLogger("siyu.wecom")

PREFIX = "fernet:"


@functools.lru_cache(maxsize=8)
def _fernet_for(secret_key: str) -> Fernet:
    # HKDF separates this key from every other use of SECRET_KEY (sessions, signing).
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"siyu", info=b"siyu wecom secrets at rest"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(k) for k in keys if k])


def secret_encrypt(value: str) -> str:
    if not value or value.startswith(PREFIX):
        return value
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def secret_decrypt(value: str) -> str:
    """The plaintext; "" when no key decrypts it (SECRET_KEY changed without a fallback), so
    the console asks for the secret again instead of failing."""
    if not value or not value.startswith(PREFIX):
        return value
    try:
        return _fernet().decrypt(value.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        log.error("a stored WeCom secret cannot be decrypted: SECRET_KEY changed; enter it again")
        return ""


class EncryptedTextField(models.TextField):
    """A text column holding its value encrypted; reads give the plaintext. Not searchable
    (each encryption differs), which suits secrets."""

    def from_db_value(self, value, expression, connection):
        return secret_decrypt(value) if value is not None else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return secret_encrypt(value) if value else value
