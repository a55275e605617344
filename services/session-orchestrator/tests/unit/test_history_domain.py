"""Issue 18: what the history import makes of WAHA's answers (pure functions)."""

from session_orchestrator.domain.history import chat_info, group_info, imported_message, lid_pairs, phone_id


def test_phone_ids_from_every_spelling_and_nothing_else():
    assert phone_id("4915111111111@s.whatsapp.net") == "4915111111111@c.us"
    assert phone_id("4915111111111@c.us") == "4915111111111@c.us"
    assert phone_id("4915111111111") == "4915111111111@c.us"
    assert [phone_id(v) for v in ("@s.whatsapp.net", "1692@lid", None, 42, "")] == [None] * 5


def test_a_groups_members_with_their_roles_and_both_ids():
    info = group_info({"id": "120363000000000001@g.us", "subject": "Family", "participants": [
        {"id": "4915122222222@s.whatsapp.net", "admin": None},
        {"id": "169268823074802@lid", "admin": "admin", "phoneNumber": "4915133333333@s.whatsapp.net"},
        {"id": "@s.whatsapp.net", "admin": "superadmin"},  # no one: left out
    ]}, 7)
    assert info is not None and info.name == "Family" and info.updated_at_ms == 7
    assert [(p.id, p.phone, p.role) for p in info.participants or []] == [
        ("4915122222222@c.us", "4915122222222@c.us", "participant"),
        ("169268823074802@lid", "4915133333333@c.us", "admin"),
    ]
    assert group_info({"id": "not a chat"}, 7) is None


def test_chat_names_pictures_and_lid_pairs():
    info = chat_info({"id": "4915111111111@c.us", "name": " ", "picture": "https://pps.whatsapp.net/x.jpg"}, 1)
    assert info is not None and info.name is None and info.picture == "https://pps.whatsapp.net/x.jpg"
    pairs = lid_pairs([{"lid": "1692@lid", "pn": "4915111111111@c.us"}, {"lid": "1693@lid", "pn": None}, {"lid": "x"}])
    assert [(p.lid, p.phone) for p in pairs] == [("1692@lid", "4915111111111@c.us")]


def test_an_imported_message_carries_both_ids_of_a_lid_sender():
    raw = {"id": "false_1692@lid_3EB0AA", "timestamp": 1_795_000_000, "from": "1692@lid", "to": "4915100000000@c.us",
           "fromMe": False, "body": "hi", "hasMedia": False, "ack": 2}
    message = imported_message(raw, "1692@lid", {"1692@lid": "4915111111111@c.us"})
    assert message is not None
    assert (message.from_lid, message.from_phone, message.chat_id) == ("1692@lid", "4915111111111@c.us", "1692@lid")
    assert imported_message({"id": "nonsense", "timestamp": 1, "fromMe": True}, "1692@lid", {}) is None
    assert imported_message({"timestamp": "never"}, "1692@lid", {}) is None
