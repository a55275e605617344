from fleet_shared.waha import session_webhook_key, sign, verify, verify_keyed
from webhook_ingest.signatures import WebhookKeys

DOC_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
DOC_KEY = "my-secret-key"
DOC_HMAC = (
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
)


def test_waha_doc_vector():
    assert sign(DOC_KEY, DOC_BODY) == DOC_HMAC
    assert verify(DOC_KEY, DOC_BODY, DOC_HMAC)


def test_signature_covers_the_exact_bytes():
    assert not verify(DOC_KEY, DOC_BODY + b" ", DOC_HMAC)
    assert not verify(DOC_KEY, DOC_BODY.replace(b'"default"', b'"defaulT"'), DOC_HMAC)


def test_wrong_key_missing_or_garbled_signature_fail():
    assert not verify("other-key", DOC_BODY, DOC_HMAC)
    assert not verify(DOC_KEY, DOC_BODY, None)
    assert not verify(DOC_KEY, DOC_BODY, "")
    assert not verify(DOC_KEY, DOC_BODY, DOC_HMAC[:-2])
    assert not verify(DOC_KEY, DOC_BODY, "é" * 128)


def test_algorithm_header_must_be_sha512_when_given():
    assert verify(DOC_KEY, DOC_BODY, DOC_HMAC, "sha512")
    assert verify(DOC_KEY, DOC_BODY, DOC_HMAC, "SHA512")
    assert not verify(DOC_KEY, DOC_BODY, DOC_HMAC, "sha256")


def test_uppercase_hex_and_surrounding_space_accepted():
    assert verify(DOC_KEY, DOC_BODY, f" {DOC_HMAC.upper()} ")


def test_kept_keys_check_as_the_derived_keys_do_every_time():
    keys = WebhookKeys(DOC_KEY, memory=10)
    alice = sign(session_webhook_key(DOC_KEY, "wf_alice"), DOC_BODY)
    for _ in range(3):  # a kept key is left as it was by each check
        assert verify_keyed(keys.session("wf_alice"), DOC_BODY, alice)
        assert not verify_keyed(keys.session("wf_alice"), DOC_BODY + b" ", alice)
        assert not verify_keyed(keys.session("wf_bob"), DOC_BODY, alice)
        assert not verify_keyed(keys.fleet, DOC_BODY, alice)
        assert verify_keyed(keys.fleet, DOC_BODY, DOC_HMAC)
    for i in range(20):  # past its memory, a session's key is derived again
        keys.session(f"wf_user{i}")
    assert verify_keyed(keys.session("wf_alice"), DOC_BODY, alice)
