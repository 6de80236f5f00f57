import random

import phonenumbers
import pytest

from siyu.core.errors import DomainError
from siyu.customers.identifiers import normalize_identifier, pinyin_of, plain_mobile_e164


@pytest.mark.parametrize(
    "raw",
    ["13812341234", "+86 138 1234 1234", "138-1234-1234", "0086 13812341234", "(+86)13812341234"],
)
def test_mainland_mobiles_normalise_to_e164(raw):
    assert normalize_identifier("phone", raw).value == "+8613812341234"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("138****1234", "masked"),
        ("138xxxx1234", "masked"),
        ("13812341234-1234", "extension"),
        ("13812341234转567", "extension"),
        ("12345", "not a valid"),
        ("hello", "not a phone"),
        ("", "empty"),
    ],
)
def test_masked_virtual_and_invalid_phones_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(DomainError, match=reason):
        normalize_identifier("phone", raw)


def test_emails_are_lower_cased_and_validated():
    assert normalize_identifier("email", "  Li.Na@Example.COM ").value == "li.na@example.com"
    with pytest.raises(DomainError, match="not an e-mail"):
        normalize_identifier("email", "li.na@")


def test_unknown_kinds_and_blank_ids_are_rejected():
    with pytest.raises(DomainError, match="unknown identity kind 'qq'"):
        normalize_identifier("qq", "12345")
    with pytest.raises(DomainError, match="empty"):
        normalize_identifier("tmall_buyer", "   ")
    with pytest.raises(DomainError, match="spaces"):
        normalize_identifier("jd_buyer", "jd 1")
    with pytest.raises(DomainError, match="longer than"):
        normalize_identifier("douyin_buyer", "x" * 500)


def test_ids_are_trimmed_and_openids_need_their_app():
    assert normalize_identifier("tmall_buyer", " tb_01 ").value == "tb_01"
    with pytest.raises(DomainError, match="app id"):
        normalize_identifier("wechat_openid", "o-abc")
    ident = normalize_identifier("wechat_openid", "o-abc", "wxapp1")
    assert (ident.namespace, ident.value) == ("wxapp1", "o-abc")
    # Global kinds ignore a namespace so the same value never splits into two identities.
    assert normalize_identifier("tmall_buyer", "tb", "ignored").namespace == ""


def test_pinyin_of_chinese_names():
    assert pinyin_of("张三") == ("zhangsan", "zs")
    assert pinyin_of("") == ("", "")


def test_the_plain_mobile_shortcut_gives_exactly_what_phonenumbers_gives():
    rng = random.Random(5)
    sample = [f"{p}{rng.randrange(10**7):07d}" for p in range(1000, 2000) for _ in range(3)]
    sample += [f"1{rng.randrange(10**10):010d}" for _ in range(5_000)]
    taken = [number for number in sample if plain_mobile_e164(number) is not None]
    assert len(taken) > len(sample) / 2  # most mainland mobiles take the shortcut
    for number in taken:
        parsed = phonenumbers.parse(number, "CN")
        assert phonenumbers.is_valid_number(parsed), number
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert plain_mobile_e164(number) == e164, number


@pytest.mark.parametrize(
    "raw", ["1381234123", "138123412345", "１３８１２３４１２３４", "138 1234 1234"]
)
def test_anything_but_eleven_ascii_digits_takes_the_full_path(raw):
    assert plain_mobile_e164(raw) is None
