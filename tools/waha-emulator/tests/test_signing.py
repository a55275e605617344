import hashlib
import hmac

import pytest

from waha_emulator.webhooks import parse_retry_after, retry_delay, retry_settings, sign

DOC_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
DOC_KEY = "my-secret-key"
DOC_HMAC = (
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
    "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
)


def test_hmac_matches_the_waha_docs_vector() -> None:
    assert sign(DOC_BODY, DOC_KEY) == DOC_HMAC
    expected = hmac.new(DOC_KEY.encode(), DOC_BODY, hashlib.sha512).hexdigest()
    assert hmac.compare_digest(expected, sign(DOC_BODY, DOC_KEY))


def test_retry_delays_follow_the_policies() -> None:
    assert [retry_delay("constant", 2, n) for n in (1, 2, 3)] == [2, 2, 2]
    assert [retry_delay("linear", 2, n) for n in (1, 2, 3)] == [2, 4, 6]
    for n in (1, 2, 3):
        base = 2 * 2**n
        assert base <= retry_delay("exponential", 2, n) <= base * 1.2


def test_retry_defaults_are_15_attempts_2s_constant() -> None:
    assert retry_settings({"retries": None}) == ("constant", 2.0, 15)
    assert retry_settings({"retries": {"policy": "linear", "attempts": 0}}) == ("linear", 2.0, 0)


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0.5", 0.5), (None, None), ("garbage", None)])
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
