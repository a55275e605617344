"""The read side against the real SecantusDB: newest first, stable keyset pages, one user only."""

import json
from types import SimpleNamespace

from fleet_shared.contracts import envelope
from fleet_shared.contracts.commands import (
    GetSession,
    ListChats,
    ListContacts,
    ListGroups,
    ListMessages,
)
from persister.queries import CHAT_CURSOR, MESSAGE_FIELDS, QueryService, encode_cursor

ALICE, BOB = "alice", "bob"
CHAT = "111@c.us"


async def ask(service: QueryService, query, user: str = ALICE):
    return await service.answer(json.dumps(envelope(query, user).wire()).encode())


async def list_messages(service: QueryService, user: str, chat: str, limit: int, before: str | None) -> SimpleNamespace:
    """`service.list_messages`, its items as the reply carries them (camelCase dicts, nulls kept)."""
    page = await service.list_messages(user, chat, limit, before)
    return SimpleNamespace(items=page.wire()["items"], next_cursor=page.next_cursor)


async def all_pages(service: QueryService, user: str, chat: str, limit: int) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = await list_messages(service, user, chat, limit, before)
        pages.append([m["id"] for m in page.items])
        if page.next_cursor is None:
            return pages
        before = page.next_cursor


async def test_messages_newest_first_in_pages(store, events):
    await store.apply([events.received(ALICE, f"m{i}", ts=1000 + i) for i in range(7)])
    service = QueryService(store)
    assert await all_pages(service, ALICE, CHAT, 3) == [["m6", "m5", "m4"], ["m3", "m2", "m1"], ["m0"]]
    page = await list_messages(service, ALICE, CHAT, 7, None)
    assert page.next_cursor is None and len(page.items) == 7
    assert set(page.items[0]) == set(MESSAGE_FIELDS)
    assert page.items[0] == {
        "id": "m6", "chatId": CHAT, "fromMe": False, "from": CHAT, "to": "999@c.us", "participant": None,
        "fromPhone": None, "fromLid": None,
        "body": "hi", "type": "chat", "hasMedia": False, "timestamp": 1006, "ack": None,
        "media": None, "replyTo": None, "reactions": [], "editedAt": None, "revokedAt": None,
    }


async def test_same_timestamp_is_ordered_by_id_without_gaps(store, events):
    await store.apply([events.received(ALICE, f"s{i}", ts=500) for i in range(5)])
    pages = await all_pages(QueryService(store), ALICE, CHAT, 2)
    assert pages == [["s4", "s3"], ["s2", "s1"], ["s0"]]
    # With an older second behind them: a page filled by the cursor's own second still says there is more.
    await store.apply([events.received(ALICE, "older", ts=499)])
    assert await all_pages(QueryService(store), ALICE, CHAT, 2) == [["s4", "s3"], ["s2", "s1"], ["s0", "older"]]
    assert await all_pages(QueryService(store), ALICE, CHAT, 3) == [["s4", "s3", "s2"], ["s1", "s0", "older"]]


async def test_pages_are_stable_when_messages_arrive_between_them(store, events):
    await store.apply([events.received(ALICE, f"m{i}", ts=100 + i) for i in range(6)])
    service = QueryService(store)
    first = await list_messages(service, ALICE, CHAT, 2, None)
    assert [m["id"] for m in first.items] == ["m5", "m4"]
    # New messages arrive, newer than everything, and one with the same timestamp as the cursor.
    await store.apply([events.received(ALICE, f"new{i}", ts=200 + i) for i in range(3)])
    await store.apply([events.received(ALICE, "m4z", ts=104)])
    second = await list_messages(service, ALICE, CHAT, 2, first.next_cursor)
    third = await list_messages(service, ALICE, CHAT, 2, second.next_cursor)
    assert [m["id"] for m in second.items] == ["m3", "m2"]
    assert [m["id"] for m in third.items] == ["m1", "m0"]
    assert third.next_cursor is None


async def test_stubs_are_hidden_until_their_message_arrives(store, events):
    await store.apply([events.received(ALICE, "real", ts=10), events.ack(ALICE, "early", 3)])
    service = QueryService(store)
    assert [m["id"] for m in (await list_messages(service, ALICE, CHAT, 50, None)).items] == ["real"]
    await store.apply([events.sent(ALICE, "early", ts=20, ack=1)])
    items = (await list_messages(service, ALICE, CHAT, 50, None)).items
    assert [(m["id"], m["ack"]) for m in items] == [("early", 3), ("real", None)]
    # Nor does a page after a cursor show one.
    await store.apply([events.ack(ALICE, "still-early", 2)])
    assert await all_pages(service, ALICE, CHAT, 1) == [["early"], ["real"]]


async def test_chats_groups_and_contacts(store, events):
    await store.apply([
        events.received(ALICE, "c1", chat="100@c.us", ts=10, chat_name="Ann"),
        events.received(ALICE, "g1", chat="200@g.us", ts=30, chat_name="Team"),
        events.received(ALICE, "l1", chat="300@lid", ts=20),
        events.received(ALICE, "g2", chat="400@g.us", ts=40),
        events.received(ALICE, "c2", chat="100@c.us", ts=50, body="latest"),
    ])
    service = QueryService(store)
    chats = (await ask(service, ListChats())).data
    assert [c["chatId"] for c in chats["items"]] == ["100@c.us", "400@g.us", "200@g.us", "300@lid"]
    assert chats["nextCursor"] is None
    ann = chats["items"][0]
    assert set(ann) == {
        "chatId", "name", "isGroup", "lastMessage", "updatedAt", "unreadCount", "picture", "phone", "participants",
    }
    assert (ann["name"], ann["isGroup"]) == ("Ann", False)
    assert ann["lastMessage"] == {"id": "c2", "body": "latest", "fromMe": False, "timestamp": 50}
    assert ann["updatedAt"].endswith("+00:00")
    groups = (await ask(service, ListGroups())).data["items"]
    assert [(g["chatId"], g["name"], g["isGroup"]) for g in groups] == [("400@g.us", None, True), ("200@g.us", "Team", True)]
    contacts = (await ask(service, ListContacts())).data["items"]
    assert [c["chatId"] for c in contacts] == ["100@c.us", "300@lid"]
    # Paged: one chat at a time, through every chat, no repeats.
    seen, cursor = [], None
    while True:
        reply = await ask(service, ListChats(limit=1, cursor=cursor))
        seen += [c["chatId"] for c in reply.data["items"]]
        if not (cursor := reply.data["nextCursor"]):
            break
    assert seen == ["100@c.us", "400@g.us", "200@g.us", "300@lid"]


async def _all_chat_pages(service: QueryService, query_type, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        reply = await ask(service, query_type(limit=limit, cursor=cursor))
        pages.append([c["chatId"] for c in reply.data["items"]])
        if not (cursor := reply.data["nextCursor"]):
            return pages


async def test_chats_of_the_same_second_page_by_chat_id_without_gaps(store, events):
    """Chats whose last messages share a second; groups and contacts paged with a cursor too."""
    chats = ["101@c.us", "102@g.us", "103@c.us", "104@g.us", "105@c.us"]
    await store.apply([events.received(ALICE, f"t{i}", chat=chat, ts=60) for i, chat in enumerate(chats)])
    await store.apply([events.received(ALICE, "older", chat="100@g.us", ts=59)])
    service = QueryService(store)
    assert await _all_chat_pages(service, ListChats, 2) == [["105@c.us", "104@g.us"], ["103@c.us", "102@g.us"], ["101@c.us", "100@g.us"]]
    assert await _all_chat_pages(service, ListGroups, 1) == [["104@g.us"], ["102@g.us"], ["100@g.us"]]
    assert await _all_chat_pages(service, ListContacts, 2) == [["105@c.us", "103@c.us"], ["101@c.us"]]


async def test_queries_answer_only_the_envelope_user(store, events):
    await store.apply([events.received(ALICE, "a1", body="alice's"), events.received(BOB, "b1", chat="222@c.us", body="bob's")])
    service = QueryService(store)
    bob_msgs = await ask(service, ListMessages(chat_id=CHAT), user=BOB)
    assert bob_msgs.ok and bob_msgs.data["items"] == []
    bob_chats = await ask(service, ListChats(), user=BOB)
    assert [c["chatId"] for c in bob_chats.data["items"]] == ["222@c.us"]
    alice_msgs = await ask(service, ListMessages(chat_id=CHAT))
    assert [m["body"] for m in alice_msgs.data["items"]] == ["alice's"]
    # A user id smuggled into the body is refused, not obeyed.
    raw = envelope(ListMessages(chat_id=CHAT), BOB).wire()
    raw["data"]["userId"] = ALICE
    reply = await service.answer(json.dumps(raw).encode())
    assert not reply.ok and reply.error.code == "invalid_query" and reply.error.status == 400


async def test_bad_queries_get_400_replies(store, events):
    await store.apply([events.received(ALICE, f"m{i}", ts=i) for i in range(3)])
    service = QueryService(store)
    huge = (encode_cursor("n", 10**100, "x"), encode_cursor("n", 2**63, "x"), encode_cursor("n", -(2**63) - 1, "x"))
    for cursor in ("not-a-cursor!", "bm90IGpzb24", encode_cursor(CHAT_CURSOR, 5, "x"), encode_cursor("m", "5", "x"), *huge):
        reply = await ask(service, ListMessages(chat_id=CHAT, before=cursor))
        assert (reply.ok, reply.error.code, reply.error.status) == (False, "invalid_cursor", 400), cursor
    for cursor in (encode_cursor("m", 5, "x"), encode_cursor(CHAT_CURSOR, 10**30, "x")):
        reply = await ask(service, ListChats(cursor=cursor))
        assert reply.error.code == "invalid_cursor"
    reply = await ask(service, GetSession())
    assert (reply.error.code, reply.error.status) == ("unknown_query", 400)
    for body in (b"{nope", b"[]", json.dumps({"type": "chat.list", "userId": ALICE}).encode()):
        reply = await service.answer(body)
        assert not reply.ok and reply.error.status == 400, body
    raw = envelope(ListMessages(chat_id=CHAT), ALICE).wire()
    raw["data"]["chatId"] = "not a chat"
    assert (await service.answer(json.dumps(raw).encode())).error.code == "invalid_query"
    # A routing key naming another user than the envelope is refused.
    wire = json.dumps(envelope(ListChats(), ALICE).wire()).encode()
    assert (await service.answer(wire, "user.bob.chat.list")).error.code == "invalid_query"
    assert (await service.answer(wire, "user.alice.chat.list")).ok
