"""Secrets at rest: the WeCom credentials are encrypted in the database, read back in full only
by the connector, and readable after a key rotation that keeps the old key as a fallback."""

import importlib

from django.apps import apps
from django.db import connection as db

from siyu.channels.wecom.fields import PREFIX
from siyu.channels.wecom.models import Connection
from siyu.channels.wecom.selectors import connection_get
from siyu.channels.wecom.services import connection_save, connection_test
from siyu.channels.wecom.tests import fake_wecom

SECRETS = ("contact_secret", "callback_token", "encoding_aes_key")


def raw_columns() -> dict:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(SECRETS)} FROM wecom_connection")
        return dict(zip(SECRETS, cursor.fetchone(), strict=True))


def save(org):
    return connection_save(
        actor=org.admin.user,
        corp_id=fake_wecom.CORP_ID,
        contact_secret=fake_wecom.SECRET,
        callback_token=fake_wecom.CALLBACK_TOKEN,
        encoding_aes_key=fake_wecom.AES_KEY,
    )


def test_secrets_are_encrypted_in_the_database_and_work(org, wecom):
    save(org)
    raw = raw_columns()
    for name, plain in zip(
        SECRETS, (fake_wecom.SECRET, fake_wecom.CALLBACK_TOKEN, fake_wecom.AES_KEY), strict=True
    ):
        assert raw[name].startswith(PREFIX)
        assert plain not in raw[name] and plain[-6:] not in raw[name]
        assert getattr(connection_get(), name) == plain
    assert connection_test(connection=connection_get()).ok  # the decrypted secret reaches WeCom


def test_migration_encrypts_rows_saved_in_plaintext(org):
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO wecom_connection (corp_id, contact_secret, callback_token, "
            "encoding_aes_key, agent_id, updated_at, last_test_message) "
            "VALUES (%s, %s, %s, %s, '', CURRENT_TIMESTAMP, '')",
            [fake_wecom.CORP_ID, fake_wecom.SECRET, fake_wecom.CALLBACK_TOKEN, fake_wecom.AES_KEY],
        )
    assert connection_get().contact_secret == fake_wecom.SECRET  # legacy plaintext still reads
    migration = importlib.import_module("siyu.channels.wecom.migrations.0012_secrets_encrypted")

    class Editor:
        connection = db

    migration.encrypt_existing(apps, Editor())
    first = raw_columns()
    assert all(value.startswith(PREFIX) for value in first.values())
    migration.encrypt_existing(apps, Editor())  # re-run: still one layer of encryption
    assert connection_get().encoding_aes_key == fake_wecom.AES_KEY


def test_rotated_key_with_fallback_still_decrypts(org, wecom, settings):
    save(org)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 40, [old]
    assert connection_get().contact_secret == fake_wecom.SECRET


def test_lost_key_asks_for_the_secrets_again(org, wecom, settings, login):
    save(org)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 40, []
    assert connection_get().contact_secret == ""  # not a crash: the console asks again
    client = login(org.admin)
    assert client.get("/settings/wecom/").status_code == 200
    response = client.post(
        "/settings/wecom/",
        {"corp_id": fake_wecom.CORP_ID, "contact_secret": "", "callback_token": "",
         "encoding_aes_key": ""},
    )  # fmt: skip
    assert response.status_code == 400
    assert Connection.objects.count() == 1
