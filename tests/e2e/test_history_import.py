"""Issue 18: pairing by phone number, the history import on first connect, names, both ids.

What the user sees through the gateway, against what WAHA (the emulator) has: two users importing
at once see only their own history, every message once, names and pictures in the chat list, the
phone number of people WhatsApp names by a @lid.
"""

import asyncio

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth
from ..helpers import import_finished, mongo, pair_by_code, stored_messages, unique_user, waha_api, waha_history

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]


async def chat_list(gateway, user: str, path: str = "chats") -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await gateway.get(f"/api/v1/waha/{path}", params=params, headers=auth(user))
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return items


async def messages_of(gateway, user: str, chat_id: str) -> list[dict]:
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": chat_id, "limit": 200}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_pairing_code_errors_are_clear_and_change_nothing(stack, gateway, waha):
    user = unique_user("pcode")
    bad = await gateway.post("/api/v1/waha/pairing-code", json={"phoneNumber": "+49 151"}, headers=auth(user))
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "invalid_request"
    unknown = await gateway.post("/api/v1/waha/pairing-code", json={"phoneNumber": "4915112345678"}, headers=auth(user))
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "session_not_found"
    # Nothing was started by either.
    assert (await gateway.get("/api/v1/waha/status", headers=auth(user))).json()["status"] == "STOPPED"

    await pair_by_code(gateway, waha, user, "4915112345678")
    paired = await gateway.post("/api/v1/waha/pairing-code", json={"phoneNumber": "4915112345678"}, headers=auth(user))
    assert paired.status_code == 409, paired.text
    assert paired.json()["error"]["code"] == "already_paired"

    r = await gateway.post("/api/v1/waha/session/stop", headers=auth(user))
    assert r.status_code == 202, r.text
    stopped = await gateway.post("/api/v1/waha/pairing-code", json={"phoneNumber": "4915112345678"}, headers=auth(user))
    assert stopped.status_code == 409, stopped.text
    assert stopped.json()["error"]["code"] == "no_pairing"
    not_working = await gateway.post("/api/v1/waha/history/import", headers=auth(user))
    assert not_working.status_code == 409, not_working.text


async def test_two_users_pair_by_code_and_import_their_own_history_at_once(stack, gateway, waha, bus, topology):
    alice, bob = unique_user("hia"), unique_user("hib")
    histories = {
        alice: {"generate": {"chats": 12, "messagesPerChat": 7, "seed": "alice"}},
        bob: {"generate": {"chats": 9, "messagesPerChat": 5, "seed": "bob"}},
    }
    phones = {alice: "4915100000001", bob: "4915100000002"}
    await asyncio.gather(*(pair_by_code(gateway, waha, u, phones[u], histories[u]) for u in (alice, bob)))
    results = await asyncio.gather(import_finished(gateway, alice), import_finished(gateway, bob))

    async with waha_api(stack) as wa:
        expected = {u: await waha_history(wa, u) for u in (alice, bob)}
        lids = {u: (await wa.get(f"/api/{session_name_for(u)}/lids")).json() for u in (alice, bob)}
    for user, result in zip((alice, bob), results, strict=True):
        want = expected[user]
        assert result["state"] == "done", result
        assert result["chats"] == len(want)
        assert result["messages"] == sum(len(m) for m in want.values())

        chats = {c["chatId"]: c for c in await chat_list(gateway, user)}
        assert set(chats) == set(want), "the chat list is the user's own chats, all of them"
        for chat_id, messages in want.items():
            got = await messages_of(gateway, user, chat_id)
            assert [m["id"] for m in got] == [m["id"] for m in messages], chat_id
            assert chats[chat_id]["unreadCount"] == 0, "imported history is not unread"
        stored = await stored_messages_of(stack, user)
        assert len(stored) == len({d["id"] for d in stored}) == result["messages"]

    # Isolation: neither sees a chat of the other's.
    alice_chats = {c["chatId"] for c in await chat_list(gateway, alice)}
    bob_chats = {c["chatId"] for c in await chat_list(gateway, bob)}
    assert not alice_chats & set(expected[bob]) and not bob_chats & set(expected[alice])
    for bob_chat in list(expected[bob])[:3]:
        assert await messages_of(gateway, alice, bob_chat) == []

    # Imported, not live: the history travelled as message.imported, never as message.received.
    imported = [m for m in bus.mentioning(f"user.{alice}.message.") if m.exchange == topology.events]
    assert {m.routing_key for m in imported} == {f"user.{alice}.message.imported"}

    # Both ids: a person WhatsApp names by a @lid has their phone number too.
    lid_to_phone = {item["lid"]: item["pn"] for item in lids[alice]}
    assert lid_to_phone, "the generated history has @lid people"
    lid_messages = [
        m for chat_id in expected[alice] for m in await messages_of(gateway, alice, chat_id) if m.get("fromLid")
    ]
    assert lid_messages
    for m in lid_messages:
        assert m["fromPhone"] == lid_to_phone[m["fromLid"]], m
    lid_chats = [c for c in (await chat_list(gateway, alice)) if c["chatId"].endswith("@lid")]
    for chat in lid_chats:
        assert chat["phone"] == lid_to_phone.get(chat["chatId"]), chat


async def stored_messages_of(stack, user: str) -> list[dict]:
    client = mongo(stack)
    try:
        return await stored_messages(client, user)
    finally:
        await client.close()


async def test_names_pictures_and_group_participants_in_the_chat_list(stack, gateway, waha):
    user = unique_user("names")
    group = "120363000000000001@g.us"
    history = {"chats": [
        {"id": "4915111111111@c.us", "name": "Max Mustermann", "picture": "https://pps.whatsapp.net/v/max.jpg",
         "messages": [{"id": "3EB0NAME01", "fromMe": False, "body": "Hallo", "timestamp": 1_795_000_000}]},
        {"id": group, "name": "Family", "isGroup": True,
         "messages": [{"id": "3EB0NAME02", "fromMe": False, "participant": "4915122222222@c.us", "body": "Dinner?",
                       "timestamp": 1_795_000_100}]},
    ]}
    await pair_by_code(gateway, waha, user, "4915100000003", history)
    assert (await import_finished(gateway, user))["state"] == "done"

    chats = {c["chatId"]: c for c in await chat_list(gateway, user)}
    assert chats["4915111111111@c.us"]["name"] == "Max Mustermann"
    assert chats["4915111111111@c.us"]["picture"] == "https://pps.whatsapp.net/v/max.jpg"
    family = chats[group]
    assert family["name"] == "Family" and family["isGroup"] is True
    members = {p["id"]: p["role"] for p in family["participants"]}
    assert members["4915122222222@c.us"] == "participant"
    assert [g["chatId"] for g in await chat_list(gateway, user, "groups")] == [group]

    # group.v2.* webhooks keep them current: a member added, then promoted, the subject changed.
    session = session_name_for(user)
    for path, body in (
        (f"groups/{group}/participants", {"action": "add", "participants": ["4915133333333"]}),
        (f"groups/{group}/participants", {"action": "promote", "participants": ["4915133333333"]}),
        (f"groups/{group}/participants", {"action": "remove", "participants": ["4915122222222"]}),
        (f"groups/{group}", {"subject": "Family & friends"}),
    ):
        r = await waha.post(f"/_emulator/sessions/{session}/{path}", json=body)
        assert r.status_code in (200, 201), r.text

    async def current() -> dict | None:
        family = next(c for c in await chat_list(gateway, user, "groups") if c["chatId"] == group)
        members = {p["id"]: p["role"] for p in family["participants"]}
        changed = members.get("4915133333333@c.us") == "admin" and "4915122222222@c.us" not in members
        return family if family["name"] == "Family & friends" and changed else None

    await wait_until(current, timeout=15, what="the group's new subject and members in the chat list")


async def test_a_message_by_webhook_and_by_import_is_stored_once_keeping_the_newer_state(stack, gateway, waha):
    user = unique_user("race")
    sender = "4915144444444"
    chat = f"{sender}@c.us"
    history = {"chats": [{"id": chat, "name": "Erika", "messages": [
        {"id": "3EB0RACE01", "fromMe": False, "body": "original", "timestamp": 1_795_000_000},
    ]}]}
    await pair_by_code(gateway, waha, user, "4915100000004", history)
    session = session_name_for(user)
    # The same message arrives by webhook while the import runs, then its sender edits it.
    r = await waha.post(f"/_emulator/sessions/{session}/inbound", json={"from": sender, "body": "original", "id": "3EB0RACE01"})
    assert r.status_code == 201, r.text
    message_id = r.json()["id"]
    await import_finished(gateway, user)
    r = await waha.post(f"/_emulator/sessions/{session}/edit", json={"from": sender, "messageId": message_id, "body": "edited"})
    assert r.status_code == 201, r.text

    async def edited() -> bool:
        return any(m["body"] == "edited" for m in await messages_of(gateway, user, chat))

    await wait_until(edited, timeout=15, what="the edit stored")
    # The import again (WAHA's copy of the message still has its first text): the edit stays.
    r = await gateway.post("/api/v1/waha/history/import", headers=auth(user))
    assert r.status_code == 202, r.text
    assert (await import_finished(gateway, user))["state"] == "done"
    got = await messages_of(gateway, user, chat)
    assert [m["id"] for m in got].count(message_id) == 1
    assert next(m for m in got if m["id"] == message_id)["body"] == "edited"
    stored = await stored_messages_of(stack, user)
    assert [d["id"] for d in stored].count(message_id) == 1


async def test_a_sender_named_by_a_lid_gets_their_phone_number_too(stack, gateway, waha):
    user = unique_user("lid")
    await pair_by_code(gateway, waha, user, "4915100000005")
    await import_finished(gateway, user)
    sender = "4915155555555"
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/inbound",
                        json={"from": sender, "body": "from my lid", "asLid": True})
    assert r.status_code == 201, r.text
    lid_chat = r.json()["from"]
    assert lid_chat.endswith("@lid")

    async def both_ids() -> dict | None:
        items = await messages_of(gateway, user, lid_chat)
        return items[0] if items and items[0].get("fromPhone") else None

    message = await wait_until(both_ids, timeout=15, what="the lid sender's phone number")
    assert (message["fromLid"], message["fromPhone"]) == (lid_chat, f"{sender}@c.us")
    chat = next(c for c in await chat_list(gateway, user) if c["chatId"] == lid_chat)
    assert chat["phone"] == f"{sender}@c.us"
    # Another user sees neither the message nor the mapping.
    other = unique_user("lidx")
    assert await messages_of(gateway, other, lid_chat) == []
