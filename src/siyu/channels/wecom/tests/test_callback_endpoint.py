"""The callback endpoint: URL check, signature, replay protection, bad input, unknown events."""

import logging
import time
from urllib.parse import urlencode

import httpx
import pytest

from siyu.channels.wecom.crypto import signature
from siyu.channels.wecom.models import Callback, Connection
from siyu.channels.wecom.tests.fake_wecom import AES_KEY, CALLBACK_TOKEN, event_xml

URL = "/wecom/callback/"
ECHO_A = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
UNKNOWN = event_xml("change_external_contact", "some_future_change", UserID="zhangsan")


def test_url_check_with_the_official_vector(client, db):
    Connection.objects.create(
        corp_id="wx5823bf96d3bd56c7",
        contact_secret="s",
        callback_token="QDG6eK",
        encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )
    query = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": ECHO_A,
    }
    response = client.get(URL + "?" + urlencode(query))
    assert response.status_code == 200
    assert response.content == b"1616140317555161061"  # bare: no quotes, BOM or newline


def test_url_check_with_a_forged_signature_is_refused(client, connection, wecom, caplog):
    echostr = wecom.crypt().encrypt("4242")
    query = {"msg_signature": "f" * 40, "timestamp": "1", "nonce": "2", "echostr": echostr}
    with caplog.at_level(logging.WARNING, logger="siyu.wecom"):
        response = client.get(URL + "?" + urlencode(query))
    assert response.status_code == 403
    assert "refused" in caplog.text


def test_url_check_echoes_the_plaintext(client, connection, wecom):
    echostr = wecom.crypt().encrypt("987654321")
    sig = signature(CALLBACK_TOKEN, "100", "abc", echostr)
    query = {"msg_signature": sig, "timestamp": "100", "nonce": "abc", "echostr": echostr}
    assert client.get(URL + "?" + urlencode(query)).content == b"987654321"


def test_a_callback_is_stored_and_acknowledged(emit, connection):
    response = emit(UNKNOWN)
    assert response.status_code == 200
    assert response.content == b"success"
    stored = Callback.objects.get()
    assert stored.kind == "change_external_contact/some_future_change"
    assert "<UserID><![CDATA[zhangsan]]></UserID>" in stored.xml
    assert stored.processed_at is not None and stored.error == ""


def test_unknown_event_is_logged_and_acknowledged(emit, connection, caplog):
    with caplog.at_level(logging.WARNING, logger="siyu.wecom"):
        response = emit(event_xml("something_new", "", Foo="bar"))
    assert response.content == b"success"
    assert "unknown event something_new" in caplog.text


def test_forged_signature_is_refused_and_logged(client, connection, wecom, caplog):
    query, body = wecom.signed_callback(UNKNOWN)
    query["msg_signature"] = "0" * 40
    with caplog.at_level(logging.WARNING, logger="siyu.wecom"):
        response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 403
    assert "signature does not match" in caplog.text
    assert not Callback.objects.exists()


def test_a_body_swapped_under_a_valid_signature_is_refused(client, connection, wecom):
    query, _ = wecom.signed_callback(UNKNOWN)
    _, other = wecom.signed_callback(event_xml("other"))
    response = client.post(URL + "?" + urlencode(query), data=other, content_type="text/xml")
    assert response.status_code == 403


def test_replayed_callback_is_acknowledged_once_and_processed_once(
    client, connection, wecom, django_capture_on_commit_callbacks
):
    query, body = wecom.signed_callback(UNKNOWN)
    url = URL + "?" + urlencode(query)
    with django_capture_on_commit_callbacks(execute=True) as first:
        assert client.post(url, data=body, content_type="text/xml").content == b"success"
    with django_capture_on_commit_callbacks(execute=True) as again:
        assert client.post(url, data=body, content_type="text/xml").content == b"success"
    assert Callback.objects.count() == 1
    assert len(first) == 1 and len(again) == 0  # processing queued once


def test_same_message_with_a_new_nonce_is_processed_once(emit, connection):
    xml = event_xml("change_external_contact", "some_future_change", created=1700000000)
    emit(xml)
    emit(xml)  # WeCom retrying: a new nonce and signature, the same message
    assert Callback.objects.count() == 1


def test_stale_timestamp_is_refused(client, connection, wecom, settings):
    settings.SIYU_WECOM_CALLBACK_WINDOW = 300
    query, body = wecom.signed_callback(UNKNOWN, timestamp=int(time.time()) - 301)
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 403
    assert b"window" in response.content


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not xml at all", b"malformed XML"),
        (b"<xml><ToUserName>x</ToUserName></xml>", b"no <Encrypt>"),
        (b"<root><Encrypt>abc</Encrypt></root>", b"not an <xml> message"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>', b"document type"),
        (b"", b"malformed XML"),
    ],
)
def test_malformed_body_is_a_400(client, connection, body, reason):
    query = {"msg_signature": "a" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 400
    assert reason in response.content


def test_signed_garbage_ciphertext_is_a_400(client, connection):
    timestamp, nonce, encrypt = str(int(time.time())), "n1", "QUJDREVGR0hJSktMTU5PUA=="
    sig = signature(CALLBACK_TOKEN, timestamp, nonce, encrypt)
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    query = {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 400


def test_signed_malformed_inner_xml_is_a_400(client, connection, wecom):
    query, body = wecom.signed_callback("<xml><Event>unclosed</xml>")
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 400
    assert not Callback.objects.exists()


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce"])
def test_missing_parameters_are_a_400(client, connection, wecom, missing):
    query, body = wecom.signed_callback(UNKNOWN)
    del query[missing]
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 400
    assert missing.encode() in response.content


def test_non_numeric_timestamp_is_a_400(client, connection, wecom):
    query, body = wecom.signed_callback(UNKNOWN)
    query["timestamp"] = "yesterday"
    response = client.post(URL + "?" + urlencode(query), data=body, content_type="text/xml")
    assert response.status_code == 400


def test_other_methods_are_refused(client, connection):
    assert client.put(URL).status_code == 405


def test_without_a_connection_the_endpoint_is_404(client, db):
    assert client.post(URL, data=b"<xml/>", content_type="text/xml").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_callback_over_real_http_to_the_live_server(live_server, wecom):
    """WeCom's side end to end: an encrypted, signed POST over HTTP to the running server."""
    Connection.objects.create(
        corp_id=wecom.corp_id,
        contact_secret=wecom.secret,
        callback_token=CALLBACK_TOKEN,
        encoding_aes_key=AES_KEY,
    )
    query, body = wecom.signed_callback(UNKNOWN)
    response = httpx.post(
        live_server.url + URL, params=query, content=body, headers={"Content-Type": "text/xml"}
    )
    assert (response.status_code, response.text) == (200, "success")
    stored = Callback.objects.get()
    assert stored.processed_at is not None  # processed by the task queued after the commit
