"""Store writes against the real SecantusDB: idempotent, order-insensitive, per user."""

import asyncio
import itertools
import random
from datetime import UTC, datetime

from persister.store import CHAT_INDEXES, MESSAGE_INDEXES, Store, chat_update

ALICE, BOB = "alice", "bob"


async def message_doc(store: Store, user: str, wa_id: str) -> dict | None:
    return await store.messages.find_one({"userId": user, "id": wa_id}, {"_id": 0, "storedAt": 0})


async def chat_doc(store: Store, user: str, chat: str) -> dict | None:
    return await store.chats.find_one({"userId": user, "chatId": chat}, {"_id": 0, "updatedAt": 0, "createdAt": 0})


async def test_indexes_are_created_idempotently(store):
    await store.ensure_indexes()
    await store.ensure_indexes()
    msg_indexes = await store.messages.index_information()
    chat_indexes = await store.chats.index_information()
    assert {i.document["name"] for i in MESSAGE_INDEXES} <= set(msg_indexes)
    assert {i.document["name"] for i in CHAT_INDEXES} <= set(chat_indexes)
    assert msg_indexes["user_message_unique"]["unique"] is True
    assert chat_indexes["user_chat_unique"]["unique"] is True


async def test_duplicate_event_is_stored_once(store, events):
    env = events.received(ALICE, "wa1", body="hello")
    first = await store.apply([env])
    again = await store.apply([env])
    in_one_batch = await store.apply([env, env])
    assert (first.written, first.duplicates) == (1, 0)
    assert (again.written, again.duplicates) == (0, 1)
    assert (in_one_batch.written, in_one_batch.duplicates) == (0, 2)
    # The same from a process that did not write it (its own memory is empty).
    from_another = await Store(store.db).apply([env])
    assert (from_another.written, from_another.duplicates) == (0, 1)
    assert await store.messages.count_documents({"userId": ALICE}) == 1
    assert await store.chats.count_documents({"userId": ALICE}) == 1
    doc = await message_doc(store, ALICE, "wa1")
    assert doc["body"] == "hello" and doc["fromMe"] is False and doc["from"] == "111@c.us"


async def test_a_batch_of_new_messages_replays_and_acks_counts_each_event_once(store, events):
    """Inserts and the updates redone after a refused insert, in one batch: every event counted
    as written or as a duplicate, whatever order MongoDB applies the batch's operations in."""
    await Store(store.db).apply([events.received(ALICE, "wa-old", body="stored before")])  # another process
    batch = [
        events.received(ALICE, "wa-new", body="new"),
        events.received(ALICE, "wa-new", body="new"),  # the same event again in the batch
        events.ack(ALICE, "wa-sent", 2),  # before its message, in the same batch
        events.sent(ALICE, "wa-sent", ts=70, ack=1),
        events.received(ALICE, "wa-old", body="stored before"),  # a replay
        events.received(BOB, "wa-new", body="bob's"),  # same WhatsApp id, another user
    ]
    result = await store.apply(batch)
    assert (result.written, result.duplicates) == (4, 2)
    assert await store.messages.count_documents({"userId": ALICE}) == 3
    assert (await message_doc(store, ALICE, "wa-new"))["body"] == "new"
    sent = await message_doc(store, ALICE, "wa-sent")
    assert (sent["ack"], sent["timestamp"], sent["body"]) == (2, 70, "yo")
    assert (await message_doc(store, BOB, "wa-new"))["body"] == "bob's"


async def test_ack_before_message_converges_in_every_order(store, events):
    """A message and its acks, delivered in every possible order, end up as one document."""
    finals = []
    for n, order in enumerate(itertools.permutations(range(3))):
        wa_id = f"wa-perm-{n}"
        batch = [events.sent(ALICE, wa_id, ts=100, ack=1), events.ack(ALICE, wa_id, 2), events.ack(ALICE, wa_id, 3)]
        for i in order:
            await store.apply([batch[i]])
        doc = await message_doc(store, ALICE, wa_id)
        doc.pop("id")
        finals.append(doc)
    assert all(d == finals[0] for d in finals)
    assert finals[0]["ack"] == 3 and finals[0]["body"] == "yo" and finals[0]["timestamp"] == 100


async def test_ack_alone_leaves_a_stub_the_message_fills(store, events):
    await store.apply([events.ack(ALICE, "wa-early", 2)])
    stub = await message_doc(store, ALICE, "wa-early")
    assert stub["ack"] == 2 and "timestamp" not in stub
    assert await store.chats.count_documents({}) == 0  # an ack alone says nothing about the chat
    await store.apply([events.sent(ALICE, "wa-early", ts=50, ack=1)])
    doc = await message_doc(store, ALICE, "wa-early")
    assert doc["ack"] == 2 and doc["timestamp"] == 50 and doc["body"] == "yo"


async def test_acks_never_go_backward(store, events):
    await store.apply([events.sent(ALICE, "wa-ack", ack=1)])
    for ack in (4, 2, 3, 1):
        await store.apply([events.ack(ALICE, "wa-ack", ack)])
    assert (await message_doc(store, ALICE, "wa-ack"))["ack"] == 4
    stale = await store.apply([events.ack(ALICE, "wa-ack", 3)])
    assert (stale.written, stale.duplicates) == (0, 1)
    # A replayed message.sent carrying ack=1 does not move it back either.
    await store.apply([events.sent(ALICE, "wa-ack", ack=1)])
    assert (await message_doc(store, ALICE, "wa-ack"))["ack"] == 4


async def test_last_message_only_moves_to_newer(store, events):
    chat = "222@c.us"
    await store.apply([events.received(ALICE, "m20", chat=chat, ts=20, body="twenty")])
    await store.apply([events.received(ALICE, "m10", chat=chat, ts=10, body="ten")])
    assert (await chat_doc(store, ALICE, chat))["lastMessage"] == {"id": "m20", "body": "twenty", "fromMe": False, "timestamp": 20}
    await store.apply([events.sent(ALICE, "m30", chat=chat, ts=30, body="thirty")])
    assert (await chat_doc(store, ALICE, chat))["lastMessage"] == {"id": "m30", "body": "thirty", "fromMe": True, "timestamp": 30}
    await store.apply([events.received(ALICE, "m20", chat=chat, ts=20, body="twenty")])  # replay of an older one
    assert (await chat_doc(store, ALICE, chat))["lastMessage"]["id"] == "m30"
    assert await store.chats.count_documents({"userId": ALICE, "chatId": chat}) == 1


async def test_last_message_tie_on_timestamp_is_order_independent(store, events):
    for n, order in enumerate(([0, 1], [1, 0])):
        chat = f"3330{n}@c.us"
        batch = [events.received(ALICE, f"a-{n}", chat=chat, ts=7), events.received(ALICE, f"b-{n}", chat=chat, ts=7)]
        await store.apply([batch[i] for i in order])
        assert (await chat_doc(store, ALICE, chat))["lastMessage"]["id"] == f"b-{n}"


async def test_concurrent_writers_keep_the_newest_last_message(store, events):
    """Many writers race to create one chat: the unique index lets one insert, the rest must still apply."""
    chat = "444@c.us"
    batch = [events.received(ALICE, f"race-{ts}", chat=chat, ts=ts) for ts in range(1, 41)]
    shuffled = batch[:]
    random.Random(7).shuffle(shuffled)
    await asyncio.gather(*(store.apply([env]) for env in shuffled))
    doc = await chat_doc(store, ALICE, chat)
    assert doc["lastMessage"]["id"] == "race-40"
    assert await store.chats.count_documents({"userId": ALICE}) == 1
    assert await store.messages.count_documents({"userId": ALICE}) == 40
    # The same messages replayed concurrently change nothing.
    results = await asyncio.gather(*(store.apply([env]) for env in batch))
    assert sum(r.duplicates for r in results) == 40 and sum(r.written for r in results) == 0


async def test_each_chat_write_is_one_atomic_write_in_either_order(store, events):
    """Two writers' writes for a new chat, in either order: the newest wins, and what a later write
    finds stored (a chat created by the other) is compared inside that write."""
    now = datetime.now(UTC)
    for n, (first_ts, second_ts) in enumerate(((20, 10), (10, 20), (15, 15))):
        chat = f"5550{n}@c.us"
        first = events.received(ALICE, f"x-{n}", chat=chat, ts=first_ts)
        second = events.received(ALICE, f"y-{n}", chat=chat, ts=second_ts)
        newest = max((first, second), key=lambda env: (env.data.timestamp, env.data.id))
        for order in ((first, second), (second, first)):
            await store.chats.delete_many({"userId": ALICE, "chatId": chat})
            for env in order:
                await store.chats.bulk_write([chat_update(env, now)])
            doc = await chat_doc(store, ALICE, chat)
            assert doc["lastMessage"]["id"] == newest.data.id, (first_ts, second_ts)
            assert doc["lastMessageAt"] == newest.data.timestamp


async def test_text_that_looks_like_a_field_path_is_stored_as_text(store, events):
    chat = "666@c.us"
    await store.apply([events.received(ALICE, "$lastMessage", chat=chat, ts=5, body="$lastMessage.body", chat_name="$name")])
    doc = await chat_doc(store, ALICE, chat)
    assert doc["lastMessage"] == {"id": "$lastMessage", "body": "$lastMessage.body", "fromMe": False, "timestamp": 5}
    assert doc["name"] == "$name"
    assert (await message_doc(store, ALICE, "$lastMessage"))["body"] == "$lastMessage.body"
    # Compared as text too: in the same second, "$z" sorts after "$lastMessage".
    await store.apply([events.received(ALICE, "$z", chat=chat, ts=5, body="$$ROOT")])
    assert (await chat_doc(store, ALICE, chat))["lastMessage"] == {"id": "$z", "body": "$$ROOT", "fromMe": False, "timestamp": 5}


async def test_a_batch_names_a_chat_as_its_messages_one_by_one_would(store, events):
    chat = "777@c.us"
    await store.apply([events.received(ALICE, "old", chat=chat, ts=1, chat_name="Ann"), events.received(ALICE, "new", chat=chat, ts=2)])
    doc = await chat_doc(store, ALICE, chat)
    assert (doc["name"], doc["lastMessage"]["id"]) == ("Ann", "new")
    # A naming message newer than the stored one renames the chat, even when a newer unnamed one shares its batch.
    await store.apply([events.received(ALICE, "a", chat=chat, ts=5, chat_name="Ann B."), events.received(ALICE, "b", chat=chat, ts=6)])
    doc = await chat_doc(store, ALICE, chat)
    assert (doc["name"], doc["lastMessage"]["id"]) == ("Ann B.", "b")
    # A batch older than the stored message changes nothing but the unread count: the name is taken.
    unchanged = {"_id": 0, "unreadCount": 0, "updatedAt": 0}
    before = await store.chats.find_one({"userId": ALICE, "chatId": chat}, unchanged)
    await store.apply([events.received(ALICE, "older", chat=chat, ts=0, chat_name="Not Ann")])
    assert await store.chats.find_one({"userId": ALICE, "chatId": chat}, unchanged) == before


async def test_a_batch_gives_a_chat_the_name_its_messages_one_by_one_would(store, events):
    """Each case: what the chat holds first, then messages (ts, id, name) written as one batch in
    one chat and one by one, in timestamp order, in another: both chats end the same."""
    cases = [
        ((5, None), [(3, "a", "A"), (4, "b", "B")]),  # older than stored, no name yet: the oldest fills it
        ((5, None), [(3, "a", "A"), (6, "b", None)]),  # a newer unnamed message, an older naming one
        ((5, "Old"), [(6, "a", "A"), (7, "b", None), (4, "c", "C")]),  # a rename and a fill in one batch
        ((5, "Old"), [(5, "a", "Tie")]),  # same second as stored, smaller id: not newer, the name is taken
        ((5, "Old"), [(5, "z", "Tie")]),  # same second, greater id: newer, renames
        ((5, None), [(2, "a", "A"), (9, "b", "B"), (1, "c", "C")]),
    ]
    for n, ((stored_ts, stored_name), batch) in enumerate(cases):
        batched, single = f"90{n}1@c.us", f"90{n}2@c.us"

        def msgs(chat: str, batch: list = batch) -> list:
            return [events.received(ALICE, f"{mid}-{chat}", chat=chat, ts=ts, chat_name=name) for ts, mid, name in batch]

        for chat in (batched, single):
            await store.apply([events.received(ALICE, f"m-{chat}", chat=chat, ts=stored_ts, chat_name=stored_name)])
        await store.apply(msgs(batched))
        for env in sorted(msgs(single), key=lambda e: e.data.timestamp):
            await store.apply([env])
        a, b = await chat_doc(store, ALICE, batched), await chat_doc(store, ALICE, single)
        assert a.get("name") == b.get("name"), (n, a.get("name"), b.get("name"))
        assert a["lastMessage"]["id"].split("-")[0] == b["lastMessage"]["id"].split("-")[0], n


async def test_a_chat_keeps_what_it_was_created_with(store, events):
    t0, t1, t2 = (datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in range(3))
    stored = {t: t.replace(tzinfo=None) for t in (t0, t1, t2)}  # the client reads naive UTC
    chat = "120999@g.us"
    first = Store(store.db, clock=lambda: t0)
    await first.apply([events.received(ALICE, "g1", chat=chat, ts=5)])
    # An older message that names the chat moves only `name` and `updatedAt`.
    await Store(store.db, clock=lambda: t1).apply([events.received(ALICE, "g0", chat=chat, ts=4, chat_name="Team")])
    doc = await store.chats.find_one({"userId": ALICE, "chatId": chat}, {"_id": 0})
    assert (doc["name"], doc["lastMessage"]["id"], doc["createdAt"], doc["updatedAt"]) == ("Team", "g1", stored[t0], stored[t1])
    # A newer message moves `lastMessage` and `updatedAt`; the kind and the creation stay.
    await Store(store.db, clock=lambda: t2).apply([events.received(ALICE, "g2", chat=chat, ts=9)])
    doc = await store.chats.find_one({"userId": ALICE, "chatId": chat}, {"_id": 0})
    assert (doc["lastMessage"]["id"], doc["name"], doc["kind"], doc["isGroup"]) == ("g2", "Team", "group", True)
    assert (doc["createdAt"], doc["updatedAt"]) == (stored[t0], stored[t2])


async def test_chat_name_kind_and_group_flag(store, events):
    group, person, channel = "120363@g.us", "555@c.us", "abc@newsletter"
    await store.apply([events.received(ALICE, "g1", chat=group, ts=5, participant="555@c.us")])
    assert (await chat_doc(store, ALICE, group)).get("name") is None
    await store.apply([events.received(ALICE, "g0", chat=group, ts=1, chat_name="Family")])  # older, but names it
    await store.apply([events.received(ALICE, "p1", chat=person, ts=5, chat_name="Ann")])
    await store.apply([events.received(ALICE, "n1", chat=channel, ts=5)])
    g, p, n = [await chat_doc(store, ALICE, c) for c in (group, person, channel)]
    assert (g["name"], g["isGroup"], g["kind"], g["lastMessage"]["id"]) == ("Family", True, "group", "g1")
    assert (p["name"], p["isGroup"], p["kind"]) == ("Ann", False, "contact")
    assert (n["isGroup"], n["kind"]) == (False, "other")
    # A newer message with a new name renames the chat; an older one does not.
    await store.apply([events.received(ALICE, "g2", chat=group, ts=9, chat_name="Family 2")])
    await store.apply([events.received(ALICE, "g-1", chat=group, ts=0, chat_name="Old name")])
    assert (await chat_doc(store, ALICE, group))["name"] == "Family 2"


async def test_two_users_never_mix(store, events):
    # The same WhatsApp ids and chat for two users (two phones talking to the same contact).
    await store.apply([events.received(ALICE, "same", body="for alice", ts=10), events.received(BOB, "same", body="for bob", ts=5)])
    await store.apply([events.ack(BOB, "same", 3)])
    a, b = await message_doc(store, ALICE, "same"), await message_doc(store, BOB, "same")
    assert (a["body"], a.get("ack")) == ("for alice", None)
    assert (b["body"], b["ack"]) == ("for bob", 3)
    assert (await chat_doc(store, ALICE, "111@c.us"))["lastMessage"]["body"] == "for alice"
    assert (await chat_doc(store, BOB, "111@c.us"))["lastMessage"]["body"] == "for bob"


async def test_a_message_stored_a_moment_ago_coming_again_costs_no_command(counted, events):
    """WAHA's `message.any` of a sent message: the orchestrator's event again, heard later."""
    db, log = counted
    store = Store(db)
    await store.ensure_indexes()
    sent = events.sent(ALICE, "wa-echo", ack=0)
    echo = sent.model_copy(update={"data": sent.data.model_copy(update={"received_at_ms": 1_700_000_000_500})})
    ack = events.ack(ALICE, "wa-echo", 2)
    await store.apply([sent, ack])
    log.sent.clear()
    again = await store.apply([echo, ack])
    assert (again.written, again.duplicates, log.sent) == (0, 2, [])
    # Anything else about the message is written: here a copy that says more (its ack).
    more = sent.model_copy(update={"data": sent.data.model_copy(update={"ack": 3})})
    assert (await store.apply([more])).written == 1
    assert (await message_doc(store, ALICE, "wa-echo"))["ack"] == 3
