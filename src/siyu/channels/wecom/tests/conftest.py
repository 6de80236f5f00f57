"""The fake WeCom server, a configured connection pointing at it, and fast retries."""

import pytest

from siyu.channels.wecom.models import Connection
from siyu.channels.wecom.tests import fake_wecom


@pytest.fixture
def wecom(settings):
    state, server = fake_wecom.serve()
    settings.SIYU_WECOM_BASE_URL = state.url
    settings.SIYU_WECOM_BACKOFF_MS = 1
    settings.SIYU_WECOM_TIMEOUT = 2
    settings.REDIS_URL = ""  # the database token store unless a test asks for Redis
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def connection(db, wecom) -> Connection:
    return Connection.objects.create(
        corp_id=fake_wecom.CORP_ID,
        contact_secret=fake_wecom.SECRET,
        callback_token=fake_wecom.CALLBACK_TOKEN,
        encoding_aes_key=fake_wecom.AES_KEY,
    )


@pytest.fixture
def emit(client, wecom, django_capture_on_commit_callbacks):
    """POST a callback to the endpoint the way WeCom does (encrypted, signed); the processing
    queued after the commit runs (Huey is immediate in tests). Returns the response."""
    from urllib.parse import urlencode

    def _emit(xml: str, **kwargs):
        query, body = wecom.signed_callback(xml, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/wecom/callback/?" + urlencode(query), data=body, content_type="text/xml"
            )

    return _emit
