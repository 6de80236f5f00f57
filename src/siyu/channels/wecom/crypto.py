"""WeCom callback crypto (WXBizMsgCrypt), exactly as the official scheme describes it.

signature = sha1 of the sorted [token, timestamp, nonce, encrypt] joined; the key is
b64decode(EncodingAESKey + "="), the IV its first 16 bytes; AES-256-CBC over
random(16) + big-endian uint32 length + message + receive id, PKCS#7-padded to 32 bytes.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16: a stock 16-byte unpadder fails on pad > 16
KEY_PATTERN = re.compile(r"[A-Za-z0-9]{43}")


class CryptoError(Exception):
    """A callback that fails a check; `code` is the official sample's return code."""

    BAD_SIGNATURE = -40001
    BAD_KEY = -40004
    BAD_RECEIVE_ID = -40005
    DECRYPT_FAILED = -40007

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    if not KEY_PATTERN.fullmatch(encoding_aes_key or ""):
        raise CryptoError(CryptoError.BAD_KEY, "EncodingAESKey must be 43 letters and digits")
    return base64.b64decode(encoding_aes_key + "=")


class MessageCrypt:
    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise CryptoError(CryptoError.BAD_SIGNATURE, "signature does not match")

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypt: str) -> str:
        """The plaintext message; raises CryptoError when it cannot be read or is not ours."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "ciphertext is not base64") from exc
        if not data or len(data) % 16:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "message too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "message length out of range")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if receive_id.decode("utf-8", "replace") != self.receive_id:
            raise CryptoError(CryptoError.BAD_RECEIVE_ID, "receive id does not match the corp id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError(CryptoError.DECRYPT_FAILED, "message is not UTF-8") from exc

    def encrypt(self, message: str, *, random: bytes | None = None) -> str:
        body = message.encode("utf-8")
        random = random if random is not None else os.urandom(16)
        plain = random + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL check: verify and return the plaintext to echo back, bare."""
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)
