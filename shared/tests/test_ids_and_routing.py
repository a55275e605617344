import pytest

from fleet_shared.ids import (
    InvalidIdError,
    normalize_chat_id,
    session_name_for,
    validate_user_id,
)
from fleet_shared.routing import (
    all_users_binding,
    one_user_binding,
    parse_user_key,
    user_key,
)

BAD_USER_IDS = ["", "a.b", "a*b", "a#b", "ünï", "a b", "a" * 65, "a/b", "user.x"]


@pytest.mark.parametrize("bad", BAD_USER_IDS)
def test_user_ids_that_would_break_routing_are_refused(bad):
    with pytest.raises(InvalidIdError):
        validate_user_id(bad)
    with pytest.raises(ValueError):
        user_key(bad, "message.received")


def test_routing_key_round_trip():
    key = user_key("alice_01", "session.status_changed")
    assert key == "user.alice_01.session.status_changed"
    parsed = parse_user_key(key)
    assert parsed.user_id == "alice_01" and parsed.type == "session.status_changed"


@pytest.mark.parametrize("key", ["user.a.b", "user.a.b.c.d", "usr.a.b.c", "user.a.B.c", "user.a*.b.c"])
def test_malformed_routing_keys_are_refused(key):
    with pytest.raises(ValueError):
        parse_user_key(key)


def test_bindings():
    assert one_user_binding("bob") == "user.bob.#"
    assert all_users_binding("message.received") == "user.*.message.received"


def test_session_names_are_stable_valid_and_distinct():
    names = {session_name_for(u) for u in ["a", "alice", "A" * 47, "A" * 48, "A" * 64, "A" * 63, "a-b", "a_b"]}
    assert len(names) == 8
    for n in names:
        assert len(n) <= 54 and n.replace("_", "").replace("-", "").isalnum()
    assert session_name_for("alice") == session_name_for("alice") == "wf_alice"


@pytest.mark.parametrize("raw,expected", [("491511234567", "491511234567@c.us"), ("123@g.us", "123@g.us"), ("9@lid", "9@lid")])
def test_chat_ids(raw, expected):
    assert normalize_chat_id(raw) == expected


@pytest.mark.parametrize("bad", ["", "1.2@c.us", "1*@c.us", "#@c.us", "١٢٣٤٥@c.us", "1" * 10_000, "123@evil.com", "abc"])
def test_bad_chat_ids(bad):
    with pytest.raises(InvalidIdError):
        normalize_chat_id(bad)
