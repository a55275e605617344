"""3e: the same webhook three times, and out of order (an ack before its message): one message, final ack."""

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..helpers import auth, connect, inbound, metric, mongo, stored_messages, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

COPIES = 3  # every webhook delivered three times (WAHA retries and duplicates)
READ, DEVICE = 3, 2


async def test_tripled_and_reordered_webhooks_make_one_message_with_the_final_ack(healthy, gateway, waha, persister):
    user = unique_user("dup")
    await connect(gateway, waha, user, "15550300003")
    sender, raw_id = "4915300000777", "ORDER0000000000000001"
    message_id = f"false_{sender}@c.us_{raw_id}"
    session = session_name_for(user)
    duplicates_before = await metric(persister, "persister_events_duplicate_total")
    db = mongo(healthy)
    try:
        await waha.post("/_emulator/faults", json={"duplicateWebhooks": COPIES - 1})

        # 1. The phone reports the message READ before WAHA told us about the message at all.
        r = await waha.post(f"/_emulator/sessions/{session}/ack", json={"id": message_id, "ack": READ})
        assert r.status_code == 201, r.text

        async def stub() -> bool:
            return [(d["id"], d.get("ack")) for d in await stored_messages(db, user)] == [(message_id, READ)]

        await wait_until(stub, timeout=15, what="the early ack kept as a stub")
        assert (await gateway.get("/api/v1/waha/messages", params={"chatId": f"{sender}@c.us"}, headers=auth(user))).json()["items"] == []

        # 2. Then the message itself (WAHA's `message` and `message.any`, DEVICE ack), 3. then a stale DEVICE ack.
        sent = await inbound(waha, user, sender, "in the wrong order", raw_id=raw_id)
        assert sent["id"] == message_id
        r = await waha.post(f"/_emulator/sessions/{session}/ack", json={"id": message_id, "ack": DEVICE})
        assert r.status_code == 201, r.text

        # ack READ x3: one write, 2 duplicates; message + message.any x3: one write, 5 duplicates; ack DEVICE x3: 3 duplicates
        async def every_copy_processed() -> bool:
            return await metric(persister, "persister_events_duplicate_total") >= duplicates_before + 10

        await wait_until(every_copy_processed, timeout=20, what="every copy processed by the persister")
        docs = await stored_messages(db, user)
    finally:
        await db.close()

    assert len(docs) == 1
    assert (docs[0]["id"], docs[0]["body"], docs[0]["ack"]) == (message_id, "in the wrong order", READ)
    page = (await gateway.get("/api/v1/waha/messages", params={"chatId": f"{sender}@c.us"}, headers=auth(user))).json()
    assert [(m["id"], m["body"], m["ack"]) for m in page["items"]] == [(message_id, "in the wrong order", READ)]
    chats = (await gateway.get("/api/v1/waha/chats", headers=auth(user))).json()["items"]
    assert [(c["chatId"], c["lastMessage"]["id"]) for c in chats] == [(f"{sender}@c.us", message_id)]
