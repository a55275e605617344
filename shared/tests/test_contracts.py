import uuid

import pytest
from pydantic import ValidationError

from fleet_shared.contracts import (
    ALL_TYPES,
    Reply,
    deterministic_id,
    envelope,
    parse_envelope,
)
from fleet_shared.contracts.commands import SendMessage
from fleet_shared.contracts.events import MessageReceived


def test_every_type_is_aggregate_dot_action():
    for name, model in ALL_TYPES.items():
        assert name == model.TYPE and name.count(".") == 1


def test_envelope_round_trip_with_camel_case_wire_format():
    msg = MessageReceived(id="false_1@c.us_A", chat_id="1@c.us", from_me=False, from_="1@c.us", body="hi", timestamp=5)
    wire = envelope(msg, "alice", id="e1", session="wf_alice").wire()
    assert set(wire) == {"id", "type", "version", "occurredAt", "userId", "session", "correlationId", "data"}
    assert wire["type"] == "message.received" and wire["data"]["chatId"] == "1@c.us" and wire["data"]["from"] == "1@c.us"
    assert parse_envelope(wire).data == msg


def test_unknown_fields_types_and_versions_are_refused():
    wire = envelope(SendMessage(chat_id="1234567@c.us", text="x"), "bob").wire()
    with pytest.raises(ValidationError):
        parse_envelope({**wire, "data": {**wire["data"], "extra": 1}})
    with pytest.raises(ValueError):
        parse_envelope({**wire, "type": "message.nope"})
    with pytest.raises(ValueError):
        parse_envelope({**wire, "version": 99})
    with pytest.raises(ValidationError):
        parse_envelope({**wire, "userId": "a.b"})


def test_deterministic_ids():
    assert deterministic_id("alice", "message", "X") == deterministic_id("alice", "message", "X")
    assert deterministic_id("alice", "message", "X") != deterministic_id("bob", "message", "X")
    # parts are separated, not concatenated
    assert deterministic_id("ab", "c") != deterministic_id("a", "bc")


@pytest.mark.parametrize("parts", [("alice", "message", "false_1@c.us_A"), ("",), ("é", "😀", "\x00" * 40), ("x" * 5000,)])
def test_deterministic_ids_are_the_uuid5_they_always_were(parts):
    # Ids already stored and published were made with `uuid.uuid5`; they must not change.
    namespace = uuid.UUID("6f1b0a52-5d8e-4f3c-9a57-0c1f4b2d7e11")
    assert deterministic_id(*parts) == str(uuid.uuid5(namespace, "\x1f".join(parts)))


def test_reply_shapes():
    assert Reply.failure("x", "y", 409).model_dump()["error"] == {"code": "x", "message": "y", "status": 409}
    assert Reply.success({"a": 1}).data == {"a": 1}
