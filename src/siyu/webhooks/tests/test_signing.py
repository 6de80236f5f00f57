"""Signatures that receivers can check: the right body and secret pass, anything else fails."""

import hashlib
import hmac
from pathlib import Path

import pytest

from siyu.webhooks.signing import SignatureError, new_secret, sign, verify

BODY = '{"id":"e1","type":"order.paid","data":{"金额":"1.00"}}'.encode()


def test_the_header_is_the_documented_hmac_of_time_dot_body():
    header = sign("whsec_x", BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"whsec_x", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("whsec_x", header, BODY, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "now", "reason"),
    [
        ("whsec_other", BODY, 1_700_000_000, "does not match"),
        ("whsec_x", BODY + b" ", 1_700_000_000, "does not match"),
        ("whsec_x", BODY, 1_700_000_301, "tolerance"),
        ("whsec_x", BODY, 1_699_999_699, "tolerance"),
    ],
)
def test_a_wrong_secret_a_changed_body_or_an_old_signature_fail(secret, body, now, reason):
    header = sign("whsec_x", BODY, timestamp=1_700_000_000)
    with pytest.raises(SignatureError, match=reason):
        verify(secret, header, body, now=now)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000", "garbage"])
def test_a_malformed_header_fails_with_a_reason(header):
    with pytest.raises(SignatureError):
        verify("whsec_x", header, BODY, now=1_700_000_000)


def test_secrets_are_long_random_and_recognisable():
    one, two = new_secret(), new_secret()
    assert one != two and one.startswith("whsec_") and len(one) > 40


def test_the_receiver_snippet_in_the_docs_accepts_our_signatures():
    docs = Path(__file__).resolve().parents[4] / "docs" / "webhooks.md"
    snippet = docs.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)
    header = sign("whsec_x", BODY)
    assert namespace["verify"]("whsec_x", header, BODY)
    assert not namespace["verify"]("whsec_y", header, BODY)
    assert not namespace["verify"]("whsec_x", sign("whsec_x", BODY, timestamp=1), BODY)
