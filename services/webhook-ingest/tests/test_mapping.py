import json
from datetime import UTC, datetime

import pytest

from fleet_shared.broker import envelope_body
from fleet_shared.contracts import deterministic_id, parse_envelope
from fleet_shared.ids import session_name_for
from fleet_shared.waha import phone_number
from webhook_ingest import mapping
from webhook_ingest.mapping import ContractViolation, translate, user_for
from webhook_ingest.waha import InvalidJson, InvalidWebhook, WahaWebhook, parse_webhook


def hook(body: dict) -> WahaWebhook:
    return WahaWebhook.model_validate(body)


def roundtrip(env):
    """What a consumer would see: the envelope re-read from its wire JSON against the contract."""
    return parse_envelope(env.wire())


# --- which user ---------------------------------------------------------------------------------


def test_user_from_metadata_when_the_session_name_is_derived_from_it(waha):
    assert user_for(hook(waha.webhook("message", waha.message(), user_id="alice"))) == "alice"
    long_id = "u" * 64
    assert user_for(hook(waha.webhook("message", waha.message(), user_id=long_id))) == long_id


@pytest.mark.parametrize(
    "metadata, session",
    [
        (None, "wf_alice"),  # no metadata
        ({}, "wf_alice"),  # no user key
        ({"user.id": "alice"}, "wf_alice"),  # someone else's key
        ({"fleet.userId": "alice"}, "wf_bob"),  # claims another user's id
        ({"fleet.userId": "alice"}, "default"),
        ({"fleet.userId": "al.ice"}, "wf_al.ice"),  # not a valid user id
        ({"fleet.userId": "*"}, "wf_*"),
        ({"fleet.userId": ""}, "wf_"),
        ({"fleet.userId": 42}, "wf_42"),
    ],
)
def test_unknown_sessions(waha, metadata, session):
    assert user_for(hook(waha.webhook("message", waha.message(), session=session, metadata=metadata))) is None


# --- what event ---------------------------------------------------------------------------------


def test_incoming_message_any_is_message_received(waha):
    body = waha.webhook("message.any", waha.message(from_me=False, body="hello"), event_id="evt_1")
    env = roundtrip(translate(hook(body), "alice"))
    assert env.type == "message.received"
    assert env.user_id == "alice"
    assert env.session == "wf_alice"
    assert env.correlation_id == "evt_1"
    assert env.id == deterministic_id("alice", "message", "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA")
    assert env.occurred_at == datetime.fromtimestamp(body["payload"]["timestamp"], UTC)
    d = env.data
    assert d.id == "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA"
    assert d.chat_id == "11111111111@c.us"  # from, since not fromMe
    assert (d.from_me, d.from_, d.to, d.body, d.type, d.has_media) == (
        False, "11111111111@c.us", "79111111111@c.us", "hello", "chat", False,
    )
    assert d.timestamp == body["payload"]["timestamp"]


def test_own_message_any_is_message_sent_in_the_chat_it_went_to(waha):
    body = waha.webhook("message.any", waha.message(from_me=True, peer="22222222222@c.us", body="yo"))
    env = roundtrip(translate(hook(body), "alice"))
    assert env.type == "message.sent"
    assert env.data.chat_id == "22222222222@c.us"  # to, since fromMe
    assert env.data.from_me is True
    assert env.data.ack == 1


def test_message_event_is_message_received(waha):
    env = roundtrip(translate(hook(waha.webhook("message", waha.message())), "alice"))
    assert env.type == "message.received"


def test_group_message_keeps_participant_and_chat_is_the_group(waha):
    payload = waha.message(peer="120363000000000000@g.us", participant="33333333333@c.us")
    env = roundtrip(translate(hook(waha.webhook("message", payload)), "alice"))
    assert env.data.chat_id == "120363000000000000@g.us"
    assert env.data.participant == "33333333333@c.us"


@pytest.mark.parametrize("raw", [{"pushName": "Hans"}, {"notifyName": "Hans"}])
def test_a_private_chat_is_named_after_the_senders_profile_name(waha, raw):
    env = translate(hook(waha.webhook("message", waha.message(_data=raw))), "alice")
    assert env.data.chat_name == "Hans"


def test_groups_and_own_messages_name_no_chat(waha):
    group = waha.message(peer="120363000000000000@g.us", participant="3@c.us", _data={"pushName": "Hans"})
    own = waha.message(from_me=True, peer="22222222222@c.us", _data={"pushName": "Me"})
    assert translate(hook(waha.webhook("message", group)), "alice").data.chat_name is None
    assert translate(hook(waha.webhook("message.any", own)), "alice").data.chat_name is None


def test_a_media_message_waha_did_not_download_is_a_failed_document(waha):
    env = translate(hook(waha.webhook("message", waha.message(hasMedia=True, body=None))), "alice")
    assert (env.data.type, env.data.has_media, env.data.body) == ("document", True, None)
    assert (env.data.media.status, env.data.media.error) == ("failed", "WAHA did not download the file")


def test_message_and_message_any_of_one_whatsapp_message_share_the_id(waha):
    payload = waha.message()
    via_message = translate(hook(waha.webhook("message", payload, event_id="evt_a")), "alice")
    via_any = translate(hook(waha.webhook("message.any", payload, event_id="evt_b")), "alice")
    assert via_message.id == via_any.id
    assert via_message.type == via_any.type == "message.received"
    assert via_message.data == via_any.data
    assert (via_message.correlation_id, via_any.correlation_id) == ("evt_a", "evt_b")


def test_a_waha_retry_produces_the_identical_envelope(waha):
    body = waha.webhook("message.any", waha.message(from_me=True))
    assert translate(hook(body), "alice").wire() == translate(hook(body), "alice").wire()
    status = waha.webhook("session.status", waha.status())
    assert translate(hook(status), "alice").wire() == translate(hook(status), "alice").wire()


def test_ids_differ_between_users_and_messages(waha):
    payload = waha.message()
    assert translate(hook(waha.webhook("message", payload, user_id="alice")), "alice").id != translate(
        hook(waha.webhook("message", payload, user_id="bob")), "bob"
    ).id
    assert translate(hook(waha.webhook("message", waha.message(raw_id="B" * 20))), "alice").id != translate(
        hook(waha.webhook("message", payload)), "alice"
    ).id


def test_message_ack(waha):
    body = waha.webhook("message.ack", waha.ack(message_id="true_11111111111@c.us_AAA", ack=3, ack_name="READ"))
    env = roundtrip(translate(hook(body), "alice"))
    assert env.type == "message.ack"
    assert env.id == deterministic_id("alice", "ack", "true_11111111111@c.us_AAA", "3")
    assert env.occurred_at == datetime.fromtimestamp(body["timestamp"] / 1000, UTC)
    assert (env.data.id, env.data.chat_id, env.data.from_me, env.data.ack, env.data.ack_name) == (
        "true_11111111111@c.us_AAA", "11111111111@c.us", True, 3, "READ",
    )
    delivered = translate(hook(waha.webhook("message.ack", waha.ack(ack=2, ack_name="DEVICE"))), "alice")
    assert delivered.id != env.id  # each ack level is its own fact


def test_group_ack_chat_comes_from_the_serialized_id(waha):
    payload = {**waha.ack(message_id="false_120363@g.us_ABCD_999@lid"), "from": "999@lid", "fromMe": None}
    env = translate(hook(waha.webhook("message.ack", payload)), "alice")
    assert (env.data.chat_id, env.data.from_me) == ("120363@g.us", False)


def test_session_status(waha):
    body = waha.webhook("session.status", waha.status("WORKING"), event_id="evt_s1",
                        me={"id": "79111111111@c.us", "pushName": "Shop", "lid": "1@lid"})
    env = roundtrip(translate(hook(body), "alice"))
    assert env.type == "session.status_reported"
    assert env.id == deterministic_id("alice", "waha-event", "evt_s1")
    assert env.correlation_id == "evt_s1"
    assert env.data.status == "WORKING"
    assert env.data.phone_number == "79111111111"
    assert env.data.push_name == "Shop"
    assert env.data.reported_at_ms == body["timestamp"]
    assert env.data.waha_event_id == "evt_s1"


def test_session_status_without_me(waha):
    body = waha.webhook("session.status", waha.status("SCAN_QR_CODE"))
    body["me"] = None
    env = translate(hook(body), "alice")
    assert (env.data.status, env.data.phone_number, env.data.push_name) == ("SCAN_QR_CODE", None, None)


def test_phone_number():
    assert phone_number("79111111111@c.us") == "79111111111"
    assert phone_number("123@lid") is None
    assert phone_number(None) is None


def test_handled_events():
    handled = ("message", "message.any", "message.ack", "message.reaction", "message.edited", "message.revoked", "session.status")
    assert all(mapping.is_handled(e) for e in handled)
    assert not any(mapping.is_handled(e) for e in ("presence.update", "poll.vote", "message.ack.group", "engine.event"))


# --- refusals ----------------------------------------------------------------------------------


def test_parse_webhook_refuses_non_json_and_non_objects():
    with pytest.raises(InvalidJson):
        parse_webhook(b"{not json")
    with pytest.raises(InvalidJson):
        parse_webhook(b"\xff\xfe")
    with pytest.raises(InvalidWebhook):
        parse_webhook(b"[1, 2]")


@pytest.mark.parametrize("field", ["id", "event", "session", "timestamp"])
def test_parse_webhook_requires_envelope_fields(waha, field):
    body = waha.webhook("message", waha.message())
    del body[field]
    with pytest.raises(InvalidWebhook, match=field):
        parse_webhook(waha.encode(body))


def test_doc_vector_body_lacks_id_and_timestamp():
    with pytest.raises(InvalidWebhook):
        parse_webhook(b'{"event":"message","session":"default","engine":"WEBJS"}')


@pytest.mark.parametrize("field", ["id", "fromMe", "timestamp"])
def test_message_payload_requires_fields(waha, field):
    payload = waha.message()
    del payload[field]
    with pytest.raises(InvalidWebhook, match=field):
        translate(hook(waha.webhook("message", payload)), "alice")


def test_from_me_must_be_a_boolean(waha):
    with pytest.raises(InvalidWebhook, match="fromMe"):
        translate(hook(waha.webhook("message", waha.message(fromMe="yes"))), "alice")


def test_payload_must_be_an_object(waha):
    with pytest.raises(InvalidWebhook):
        translate(hook(waha.webhook("message", None)), "alice")


def test_ack_requires_an_ack_value(waha):
    with pytest.raises(InvalidWebhook, match="ack"):
        translate(hook(waha.webhook("message.ack", {**waha.ack(), "ack": None})), "alice")


@pytest.mark.parametrize(
    "payload_change",
    [
        {"id": "x" * 600},  # longer than the contract's message id
        {"from": "1" * 300 + "@c.us"},  # absurd chat id
        {"participant": "p" * 300},
    ],
)
def test_fields_beyond_the_contract_are_refused(waha, payload_change):
    with pytest.raises(ContractViolation):
        translate(hook(waha.webhook("message", waha.message(**payload_change))), "alice")


def test_message_without_its_chat_is_refused(waha):
    with pytest.raises(ContractViolation, match="to"):
        translate(hook(waha.webhook("message.any", waha.message(from_me=True, to=None))), "alice")


def test_envelope_fields_with_absurd_lengths_are_refused(waha):
    with pytest.raises(InvalidWebhook):
        parse_webhook(waha.encode(waha.webhook("message", waha.message(), event_id="e" * 1000)))
    with pytest.raises(InvalidWebhook):
        parse_webhook(waha.encode(waha.webhook("message", waha.message(), session="s" * 1000)))


def test_session_names_used_by_the_tests_are_the_derived_ones():
    assert session_name_for("alice") == "wf_alice"


def test_half_an_emoji_is_kept_as_a_replacement_character(waha):
    """Node's JSON.stringify escapes a lone surrogate (an emoji cut in half); the message is kept."""
    raw = waha.encode(waha.webhook("message", waha.message(body="cut \ud83d here")))
    assert b"\\ud83d" in raw
    parsed = parse_webhook(raw)
    env = mapping.translate(parsed, mapping.user_for(parsed))
    assert env.data.body == "cut \ufffd here"
    assert json.loads(envelope_body(env))["data"]["body"] == "cut \ufffd here"


def test_invalid_json_is_still_refused_after_the_second_look():
    with pytest.raises(InvalidJson, match="not valid JSON"):
        parse_webhook(b'{"id": "\\ud83d", ')


# --- groups (issue 18) ---------------------------------------------------------------------------

GROUP = "120363000000000001@g.us"


def test_a_group_joined_gives_its_subject_and_members(waha):
    payload = {"timestamp": 1_795_000_000_123, "group": {"id": GROUP, "subject": "Family", "participants": [
        {"id": "4915122222222@c.us", "pn": "4915122222222@c.us", "role": "participant"},
        {"id": "169268823074802@lid", "pn": "4915133333333@c.us", "role": "superadmin"},
    ]}, "_data": {}}
    env = roundtrip(translate(hook(waha.webhook("group.v2.join", payload)), "alice"))
    assert env.type == "chat.updated" and env.user_id == "alice"
    assert env.data.chat_id == GROUP and env.data.name == "Family" and not env.data.left
    assert [(p.id, p.phone, p.role) for p in env.data.participants] == [
        ("4915122222222@c.us", "4915122222222@c.us", "participant"),
        ("169268823074802@lid", "4915133333333@c.us", "superadmin"),
    ]
    assert env.data.updated_at_ms == 1_795_000_000_123


def test_members_changing_and_the_user_leaving_a_group(waha):
    payload = {"group": {"id": GROUP}, "type": "promote", "timestamp": 1, "participants": [{"id": "49151@c.us", "role": "admin"}]}
    env = translate(hook(waha.webhook("group.v2.participants", payload)), "alice")
    assert [(c.id, c.change) for c in env.data.member_changes] == [("49151@c.us", "promote")]
    assert env.data.participants is None and env.data.name is None
    left = translate(hook(waha.webhook("group.v2.leave", {"group": {"id": GROUP}, "timestamp": 2})), "alice")
    assert left.data.left is True
    with pytest.raises(ContractViolation):
        translate(hook(waha.webhook("group.v2.participants", {**payload, "type": "vanish"})), "alice")
    with pytest.raises(ContractViolation):
        translate(hook(waha.webhook("group.v2.update", {"group": {"id": "not a group"}, "timestamp": 3})), "alice")
