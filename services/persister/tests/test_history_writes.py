"""Issue 18: imported history, chat info and people's two ids, written against the real SecantusDB."""

from fleet_shared.contracts import deterministic_id, envelope
from fleet_shared.contracts.events import (
    ChatUpdated,
    ContactLid,
    ContactLidsMapped,
    GroupParticipant,
    MemberChange,
    MessageEdited,
    MessageImported,
)
from persister.queries import QueryService

ALICE, BOB = "alice", "bob"
LID, PHONE = "1692@lid", "4915111111111@c.us"
GROUP = "120363000000000001@g.us"


def imported(user: str, wa_id: str, chat: str, body: str, ts: int, **kw):
    data = MessageImported(id=wa_id, chat_id=chat, from_me=False, from_=chat, body=body, timestamp=ts, **kw)
    return envelope(data, user, id=deterministic_id(user, "imported", wa_id))


async def test_history_is_stored_once_never_unread_and_never_undoes_an_edit(store, events):
    wa_id = f"false_{LID}_3EB0A1"
    webhook = events.received(ALICE, wa_id, chat=LID, body="original", ts=100, from_lid=LID)
    edit = envelope(MessageEdited(id=wa_id, chat_id=LID, body="edited", edited_at=110), ALICE)
    await store.apply([webhook])
    await store.apply([edit])
    await store.apply([imported(ALICE, wa_id, LID, "original", 100, from_lid=LID, from_phone=PHONE)])
    await store.apply([imported(ALICE, f"false_{LID}_3EB0A0", LID, "older", 90, from_lid=LID)])
    docs = await store.messages.find({"userId": ALICE}, {"_id": 0}).to_list()
    assert sorted(d["id"] for d in docs) == [f"false_{LID}_3EB0A0", wa_id]
    mine = next(d for d in docs if d["id"] == wa_id)
    assert (mine["body"], mine["fromPhone"], mine["fromLid"]) == ("edited", PHONE, LID)
    # The webhook's copy again (no phone number in it): the known one stays.
    await store.apply([webhook])
    assert (await store.messages.find_one({"userId": ALICE, "id": wa_id}))["fromPhone"] == PHONE
    chat = await store.chats.find_one({"userId": ALICE, "chatId": LID})
    assert chat["unreadCount"] == 1, "only the webhook's message counts as unread"


async def test_chat_info_names_pictures_and_members_follow_the_newest_word(store):
    def info(at: int, **kw):
        return envelope(ChatUpdated(chat_id=GROUP, updated_at_ms=at, **kw), ALICE)

    members = [GroupParticipant(id=PHONE, phone=PHONE), GroupParticipant(id=LID, phone=None, role="superadmin")]
    await store.apply([info(10, name="Family", picture="https://p/1.jpg", participants=members)])
    await store.apply([info(5, name="Old name")])  # older: changes nothing
    await store.apply([info(20, member_changes=[
        MemberChange(id="4915122222222@c.us", change="join"), MemberChange(id=PHONE, change="promote"),
        MemberChange(id=LID, change="leave"),
    ])])
    doc = await store.chats.find_one({"userId": ALICE, "chatId": GROUP})
    assert (doc["infoName"], doc["picture"], doc["isGroup"]) == ("Family", "https://p/1.jpg", True)
    assert [(p["id"], p["role"]) for p in doc["participants"]] == [(PHONE, "admin"), ("4915122222222@c.us", "participant")]
    assert await store.chats.find_one({"userId": BOB, "chatId": GROUP}) is None


async def test_a_lid_senders_phone_is_filled_in_from_the_users_own_mapping(store, events):
    await store.apply([events.received(ALICE, f"false_{LID}_3EB0B1", chat=LID, from_lid=LID),
                       events.received(BOB, f"false_{LID}_3EB0B1", chat=LID, from_lid=LID)])
    await store.apply([envelope(ContactLidsMapped(items=[ContactLid(lid=LID, phone=PHONE)]), ALICE)])
    service = QueryService(store)
    alice = await service.list_messages(ALICE, LID, 10, None)
    bob = await service.list_messages(BOB, LID, 10, None)
    assert [m.from_phone for m in alice.items] == [PHONE]
    assert [m.from_phone for m in bob.items] == [None], "another user's mapping is not theirs"
    chats = await service.list_chats(ALICE, None, 10, None)
    assert [c.phone for c in chats.items] == [PHONE]
