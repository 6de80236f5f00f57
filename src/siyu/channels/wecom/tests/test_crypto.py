"""The callback crypto against the official test material (docs reference, vectors A–C)."""

import pytest

from siyu.channels.wecom.crypto import CryptoError, MessageCrypt, signature

A = MessageCrypt(
    token="QDG6eK",
    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    receive_id="wx5823bf96d3bd56c7",
)
B = MessageCrypt(
    token="123456",
    encoding_aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    receive_id="wx49f0ab532d5d035a",
)
ECHO_A = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
ECHO_B = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


def test_official_url_check_vector_a():
    reply = A.verify_url(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", ECHO_A
    )
    assert reply == "1616140317555161061"


def test_wechatpy_url_check_vector_b():
    reply = B.verify_url(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", ECHO_B
    )
    assert reply == "5927782489442352469"


def test_signature_is_sha1_of_sorted_parts():
    assert signature("QDG6eK", "1409659589", "263014780", ECHO_A) == (
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    )


def test_forged_signature_is_refused():
    with pytest.raises(CryptoError) as exc:
        A.verify_url("0" * 40, "1409659589", "263014780", ECHO_A)
    assert exc.value.code == CryptoError.BAD_SIGNATURE


def test_other_corp_id_is_refused():
    other = MessageCrypt(
        token="QDG6eK",
        encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        receive_id="wwsomeoneelse",
    )
    with pytest.raises(CryptoError) as exc:
        other.decrypt(ECHO_A)
    assert exc.value.code == CryptoError.BAD_RECEIVE_ID


def test_multibyte_round_trip_pads_to_32_bytes():
    """Vector C style: a message with 你好, whose length counts UTF-8 bytes, padded past 16."""
    message = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
        "<Content><![CDATA[你好]]></Content></xml>"
    )
    encrypted = A.encrypt(message, random=b"1234567890123456")
    assert A.decrypt(encrypted) == message
    # 16 random + 4 length + message bytes + corp id, padded with 1..32 bytes to a multiple of 32
    raw = 16 + 4 + len(message.encode()) + len("wx5823bf96d3bd56c7")
    assert len(__import__("base64").b64decode(encrypted)) == raw + (32 - raw % 32)


@pytest.mark.parametrize("length", range(0, 70))
def test_round_trip_every_padding_length(length):
    message = "é" * length
    assert B.decrypt(B.encrypt(message)) == message


@pytest.mark.parametrize("bad", ["not base64!!", "", "QUJD", "A" * 44])
def test_garbage_ciphertext_is_a_decrypt_error(bad):
    with pytest.raises(CryptoError) as exc:
        A.decrypt(bad)
    assert exc.value.code == CryptoError.DECRYPT_FAILED


def test_bad_key_is_refused():
    with pytest.raises(CryptoError) as exc:
        MessageCrypt(token="t", encoding_aes_key="short", receive_id="x")
    assert exc.value.code == CryptoError.BAD_KEY
