"""Opening a callback request from WeCom: parameters, signature, replay window, decryption,
receive id and XML, each failure a CallbackRefused with the HTTP status and a reason."""

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from django.conf import settings

from siyu.channels.wecom.crypto import CryptoError, MessageCrypt
from siyu.channels.wecom.models import Connection

MAX_BODY = 64 * 1024
# The standard library parser does not fetch external entities, but an internal entity can
# still expand exponentially; WeCom never sends a document type, so refuse any.
DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class CallbackRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    xml: str
    fields: dict[str, str]
    nonce: str
    timestamp: int


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The children of an <xml> document as {tag: text}; raises CallbackRefused(400)."""
    raw = data.encode() if isinstance(data, str) else data
    if DOCTYPE.search(raw):
        raise CallbackRefused(400, "document type declarations are not accepted")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise CallbackRefused(400, f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise CallbackRefused(400, "the document is not an <xml> message")
    return {child.tag: (child.text or "").strip() for child in root}


def _crypt(connection: Connection) -> MessageCrypt:
    try:
        return MessageCrypt(
            token=connection.callback_token,
            encoding_aes_key=connection.encoding_aes_key,
            receive_id=connection.corp_id,
        )
    except CryptoError as exc:
        raise CallbackRefused(503, "the WeCom connection's EncodingAESKey is invalid") from exc


def _params(query, *names: str) -> list[str]:
    values = [query.get(name, "") for name in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise CallbackRefused(400, "missing query parameter(s): " + ", ".join(missing))
    return values


def _checked(crypt: MessageCrypt, signature: str, timestamp: str, nonce: str, encrypt: str):
    try:
        crypt.verify(signature, timestamp, nonce, encrypt)
    except CryptoError as exc:
        raise CallbackRefused(403, exc.message) from exc
    try:
        return crypt.decrypt(encrypt)
    except CryptoError as exc:
        status = 403 if exc.code == CryptoError.BAD_RECEIVE_ID else 400
        raise CallbackRefused(status, exc.message) from exc


def verify_url(connection: Connection, query) -> str:
    """WeCom's URL check (GET): the decrypted echostr to answer with, bare."""
    signature, timestamp, nonce, echostr = _params(
        query, "msg_signature", "timestamp", "nonce", "echostr"
    )
    # A '+' of the base64 echostr arrives as a space when WeCom leaves it unencoded.
    return _checked(_crypt(connection), signature, timestamp, nonce, echostr.replace(" ", "+"))


def open_callback(connection: Connection, query, body: bytes, *, now: float | None = None):
    """Verify and decrypt a POSTed callback; returns the Inbound message."""
    signature, timestamp, nonce = _params(query, "msg_signature", "timestamp", "nonce")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise CallbackRefused(400, "timestamp must be a number of seconds")
    if len(body) > MAX_BODY:
        raise CallbackRefused(400, f"the body is larger than {MAX_BODY} bytes")
    encrypt = parse_xml(body).get("Encrypt", "")
    if not encrypt:
        raise CallbackRefused(400, "the body has no <Encrypt> element")
    crypt = _crypt(connection)
    try:
        crypt.verify(signature, timestamp, nonce, encrypt)
    except CryptoError as exc:
        raise CallbackRefused(403, exc.message) from exc
    # Signed but old: a captured request sent again later. Replays inside the window are
    # caught by the nonce and the message digest when stored.
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > settings.SIYU_WECOM_CALLBACK_WINDOW:
        raise CallbackRefused(403, "timestamp outside the accepted window")
    plain = _checked(crypt, signature, timestamp, nonce, encrypt)
    fields = parse_xml(plain)
    return Inbound(xml=plain, fields=fields, nonce=nonce, timestamp=int(timestamp))
