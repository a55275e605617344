"""Reactions, edits, deletions, media, replies, unread counts and arrival order, on the real
MongoDB-wire server: each fact changes only its own fields, in whatever order the events come."""

import json
import random

from fleet_shared.contracts import deterministic_id, envelope
from fleet_shared.contracts.commands import GetMedia
from fleet_shared.contracts.events import (
    ChatRead,
    MessageEdited,
    MessageMediaUpdated,
    MessageReaction,
    MessageRevoked,
)
from fleet_shared.contracts.media import MediaRef, MessageMedia
from persister.queries import QueryService

ALICE, BOB = "alice", "bob"
CHAT = "111@c.us"
PEER = "111@c.us"
SHA = "ab" * 32


def reaction(user: str, target: str, text: str, ts: int, *, sender: str = PEER, from_me: bool = False):
    data = MessageReaction(id=target, chat_id=CHAT, from_=sender, from_me=from_me, reaction=text, timestamp=ts)
    return envelope(data, user, id=deterministic_id(user, "reaction", target, sender, str(ts)))


def edited(user: str, target: str, body: str, at: int):
    return envelope(MessageEdited(id=target, chat_id=CHAT, body=body, edited_at=at), user)


def revoked(user: str, target: str, at: int = 2_000):
    return envelope(MessageRevoked(id=target, chat_id=CHAT, revoked_at=at), user)


def media(status: str, *, size: int | None = 1000, key: str = "messages/alice/m") -> MessageMedia:
    stored = MediaRef(store="gridfs", key=key, size=size or 0, sha256=SHA) if status == "stored" else None
    return MessageMedia(kind="image", mimetype="image/jpeg", filename="a.jpg", size=size, status=status, stored=stored,
                        error="WAHA answered 404" if status == "failed" else None)


def media_update(user: str, target: str, status: str, **kw):
    return envelope(MessageMediaUpdated(id=target, chat_id=CHAT, media=media(status, **kw)), user)


async def items(store, user: str = ALICE, chat: str = CHAT, limit: int = 50) -> list[dict]:
    page = await QueryService(store).list_messages(user, chat, limit, None)
    return page.wire()["items"]


async def item(store, wa_id: str, user: str = ALICE) -> dict:
    return next(i for i in await items(store, user) if i["id"] == wa_id)


async def test_reactions_one_per_person_the_latest_and_an_empty_one_takes_it_back(store, events):
    await store.apply([events.received(ALICE, "m1", ts=1000)])
    await store.apply([reaction(ALICE, "m1", "👍", 1001), reaction(ALICE, "m1", "❤️", 1002, sender="222@c.us")])
    await store.apply([reaction(ALICE, "m1", "😂", 1003)])
    await store.apply([reaction(ALICE, "m1", "😮", 1002)])  # an older one arriving late

    got = {r["from"]: r["reaction"] for r in (await item(store, "m1"))["reactions"]}
    assert got == {PEER: "😂", "222@c.us": "❤️"}

    await store.apply([reaction(ALICE, "m1", "", 1004, sender="222@c.us")])
    assert [r["reaction"] for r in (await item(store, "m1"))["reactions"]] == ["😂"]


async def test_a_reaction_before_its_message_is_kept_for_it(store, events):
    await store.apply([reaction(ALICE, "m2", "👍", 1001)])
    assert await items(store) == []  # a stub is never shown

    await store.apply([events.received(ALICE, "m2", ts=1000, body="hi")])

    shown = await item(store, "m2")
    assert (shown["body"], [r["reaction"] for r in shown["reactions"]]) == ("hi", ["👍"])


async def test_an_edit_replaces_the_text_and_a_late_replay_of_the_original_does_not_undo_it(store, events):
    original = events.received(ALICE, "m3", ts=1000, body="helo")
    await store.apply([original])
    await store.apply([edited(ALICE, "m3", "hello", 1010)])
    await store.apply([original])  # WAHA's retry of the first webhook, after the edit
    await store.apply([edited(ALICE, "m3", "hel", 1005)])  # an older edit arriving late

    shown = await item(store, "m3")
    assert (shown["body"], shown["editedAt"]) == ("hello", 1010)


async def test_an_edit_of_a_message_not_stored_yet_wins_over_its_original_text(store, events):
    await store.apply([edited(ALICE, "m4", "second thoughts", 1010)])
    await store.apply([events.received(ALICE, "m4", ts=1000, body="first thoughts")])

    assert (await item(store, "m4"))["body"] == "second thoughts"


async def test_a_deleted_message_stays_deleted_text_and_media_gone(store, events):
    first = events.received(ALICE, "m5", ts=1000, body="oops", has_media=True, media=media("pending"))
    await store.apply([first, media_update(ALICE, "m5", "stored")])
    await store.apply([revoked(ALICE, "m5")])
    await store.apply([first, media_update(ALICE, "m5", "stored"), edited(ALICE, "m5", "again", 2_100)])

    shown = await item(store, "m5")
    assert (shown["body"], shown["media"], shown["revokedAt"]) == (None, None, 2_000)
    reply = await QueryService(store).answer(json.dumps(envelope(GetMedia(message_id="false_1@c.us_X"), ALICE).wire()).encode())
    assert reply.error.status == 404


async def test_media_goes_pending_to_stored_and_a_stored_copy_is_never_replaced(store, events):
    await store.apply([events.received(ALICE, "m6", ts=1000, body="look", type="image", has_media=True, media=media("pending"))])
    assert (await item(store, "m6"))["media"] == {
        "kind": "image", "mimetype": "image/jpeg", "filename": "a.jpg", "size": 1000, "caption": "look",
        "status": "pending", "error": None,
    }
    await store.apply([media_update(ALICE, "m6", "failed")])
    assert (await item(store, "m6"))["media"]["status"] == "failed"
    await store.apply([media_update(ALICE, "m6", "stored", size=2048)])
    await store.apply([media_update(ALICE, "m6", "pending"), media_update(ALICE, "m6", "failed")])  # late ones
    await store.apply([events.received(ALICE, "m6", ts=1000, body="look", has_media=True, media=media("pending"))])

    shown = (await item(store, "m6"))["media"]
    assert (shown["status"], shown["size"]) == ("stored", 2048)
    assert "stored" not in shown  # where the copy is kept is never in a page


async def test_the_media_record_is_the_owners_only(store, events):
    wa_id = "false_111@c.us_3EB0AA"
    await store.apply([events.received(ALICE, wa_id, ts=1000, has_media=True, media=media("stored", key="messages/alice/x"))])
    service = QueryService(store)

    def ask(user: str):
        return service.answer(json.dumps(envelope(GetMedia(message_id=wa_id), user).wire()).encode())

    mine = await ask(ALICE)
    assert mine.ok and mine.data["media"]["stored"]["key"] == "messages/alice/x"
    theirs = await ask(BOB)
    assert (theirs.ok, theirs.error.code, theirs.error.status) == (False, "media_not_found", 404)


async def test_messages_of_one_second_come_back_in_arrival_order(store, events):
    arrivals = [events.received(ALICE, f"z{n:02d}-{random.randint(0, 9999)}", ts=1000, received_at_ms=1000_000 + 20 * n)
                for n in range(25)]
    shuffled = random.sample(arrivals, len(arrivals))
    for i in range(0, 25, 5):
        await store.apply(shuffled[i:i + 5])

    newest_first = [m["id"] for m in await items(store)]
    assert newest_first == [e.data.id for e in reversed(arrivals)]
    # Paging keeps that order across the cursor.
    service, pages, before = QueryService(store), [], None
    while True:
        page = await service.list_messages(ALICE, CHAT, 7, before)
        pages += [m.id for m in page.items]
        if page.next_cursor is None:
            break
        before = page.next_cursor
    assert pages == newest_first


async def test_a_reply_names_the_message_it_answers(store, events):
    await store.apply([events.received(ALICE, "m7", ts=1000, reply_to="true_111@c.us_3EB0QQ")])

    assert (await item(store, "m7"))["replyTo"] == "true_111@c.us_3EB0QQ"


async def chat(store, user: str = ALICE, chat_id: str = CHAT) -> dict:
    page = await QueryService(store).list_chats(user, None, 50, None)
    return next(c for c in page.wire()["items"] if c["chatId"] == chat_id)


async def test_unread_counts_new_incoming_messages_once_and_reading_resets_it(store, events):
    first = [events.received(ALICE, f"u{i}", ts=1000 + i) for i in range(3)]
    await store.apply(first)
    await store.apply([*first, events.sent(ALICE, "mine", ts=1010)])  # replays and own messages: not unread
    assert (await chat(store))["unreadCount"] == 3

    await store.apply([envelope(ChatRead(chat_id=CHAT, read_at=1020), ALICE)])
    assert (await chat(store))["unreadCount"] == 0

    await store.apply([events.received(ALICE, "late-but-old", ts=1015), events.received(ALICE, "new", ts=1030)])
    assert (await chat(store))["unreadCount"] == 1  # only what came after the reading


async def test_another_users_reading_changes_nothing_of_mine(store, events):
    await store.apply([events.received(ALICE, "a1", ts=1000), events.received(BOB, "a1", ts=1000)])

    await store.apply([envelope(ChatRead(chat_id=CHAT, read_at=2000), BOB)])

    assert (await chat(store, ALICE))["unreadCount"] == 1
    assert (await chat(store, BOB))["unreadCount"] == 0


async def test_messages_stored_before_the_arrival_order_existed_are_sorted_with_the_others(store, events):
    # As an earlier version left them: no `sortMs`, sorted by the `user_chat_newest` index.
    await store.messages.insert_many([
        {"userId": ALICE, "id": f"old{i}", "chatId": CHAT, "fromMe": False, "from": PEER, "to": "999@c.us",
         "participant": None, "body": "old", "type": "chat", "hasMedia": False, "timestamp": 900 + i}
        for i in range(3)
    ])
    await store.messages.create_index([("userId", 1), ("chatId", 1), ("timestamp", -1), ("id", -1)], name="user_chat_newest")

    await store.ensure_indexes()
    await store.apply([events.received(ALICE, "new", ts=1000)])

    assert [m["id"] for m in await items(store)] == ["new", "old2", "old1", "old0"]
    assert "user_chat_newest" not in await store.messages.index_information()
