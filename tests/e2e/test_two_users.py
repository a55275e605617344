"""Issue 2's end-to-end proof: two users, their own WhatsApp, their own data, over real sockets."""

import asyncio
import base64
import json
import uuid

import aio_pika
import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.waha import sign

from ..conftest import SECRETS, auth
from ..helpers import signed, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ALICE, BOB = "alice", "bob"
SESSIONS = {ALICE: "wf_alice", BOB: "wf_bob"}
PHONES = {ALICE: "15550001111", BOB: "15550002222"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def status_of(gateway, user):
    r = await gateway.get("/api/v1/waha/status", headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


async def history(gateway, user, chat_id):
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": chat_id}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.fixture(scope="module")
async def connected(stack):
    """Both users got a QR at the same time, scanned it, and are WORKING."""
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gateway, httpx.AsyncClient(
        base_url=stack.waha_url, timeout=30
    ) as waha:
        answers = await asyncio.gather(*(gateway.get("/api/v1/waha/qr", headers=auth(u)) for u in (ALICE, BOB)))
        qrs = {}
        for user, r in zip((ALICE, BOB), answers, strict=True):
            assert r.status_code == 200, r.text
            qrs[user] = r.json()
        for user in (ALICE, BOB):
            r = await waha.post(f"/_emulator/sessions/{SESSIONS[user]}/scan", json={"phone": PHONES[user]})
            assert r.status_code in (200, 201), r.text
        for user in (ALICE, BOB):

            async def working(user=user):
                return (await status_of(gateway, user))["status"] == "WORKING"

            await wait_until(working, timeout=15, what=f"{user} WORKING")
        return qrs


async def test_two_users_get_their_own_qr_codes_at_the_same_time(connected):
    alice, bob = connected[ALICE], connected[BOB]
    for qr in (alice, bob):
        assert qr["status"] == "SCAN_QR_CODE"
        assert qr["qr"]["mimetype"] == "image/png"
        assert base64.b64decode(qr["qr"]["data"]).startswith(PNG_MAGIC)
    assert alice["qr"]["value"] != bob["qr"]["value"]


async def test_once_scanned_both_are_working_with_their_own_phone(connected, gateway):
    for user in (ALICE, BOB):
        status = await status_of(gateway, user)
        assert status["userId"] == user and status["session"] == SESSIONS[user]
        assert status["status"] == "WORKING"
        assert PHONES[user] in (status["phoneNumber"] or "")
    r = await gateway.get("/api/v1/waha/qr", headers=auth(ALICE))
    assert r.json() == {"status": "WORKING", "qr": None}


@pytest.fixture
async def user_topics(rabbitmq_url, topology):
    """A queue per user bound to `user.<id>.#`, as another internal service would bind it."""
    connection = await aio_pika.connect(rabbitmq_url)
    channel = await connection.channel()
    events = await channel.get_exchange(topology.events)
    queues = {}
    for user in (ALICE, BOB):
        q = await channel.declare_queue(exclusive=True)
        await q.bind(events, f"user.{user}.#")
        queues[user] = q
    yield queues
    await connection.close()


async def drain(queue) -> list[dict]:
    out = []
    while (msg := await queue.get(no_ack=True, fail=False)) is not None:
        out.append(json.loads(msg.body))
    return out


async def test_inbound_message_reaches_alice_history_and_only_her_topic(connected, gateway, waha, user_topics):
    sender = "4915112345678"
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[ALICE]}/inbound", json={"from": sender, "body": "Hi Alice!"})
    assert r.status_code in (200, 201), r.text
    wa_id = r.json()["id"]

    async def stored():
        return [m for m in await history(gateway, ALICE, f"{sender}@c.us") if m["id"] == wa_id]

    [message] = await wait_until(stored, timeout=15, what="alice's message in her history")
    assert message["body"] == "Hi Alice!" and message["fromMe"] is False

    seen = {ALICE: [], BOB: []}

    async def alice_event():
        seen[ALICE] += await drain(user_topics[ALICE])
        return [e for e in seen[ALICE] if e["type"] == "message.received" and e["data"]["id"] == wa_id]

    await wait_until(alice_event, timeout=10, what="message.received on user.alice.#")
    # A message of bob's own, sent after alice's, proves bob's topic had its chance to see hers.
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[BOB]}/inbound", json={"from": sender, "body": "Hi Bob!"})
    bob_wa_id = r.json()["id"]

    async def bob_event():
        seen[BOB] += await drain(user_topics[BOB])
        return [e for e in seen[BOB] if e["type"] == "message.received" and e["data"]["id"] == bob_wa_id]

    await wait_until(bob_event, timeout=10, what="bob's own message.received")
    assert all(e["userId"] == BOB for e in seen[BOB])
    assert all(e["userId"] == ALICE for e in seen[ALICE])
    assert wa_id not in {e["data"].get("id") for e in seen[BOB]}


async def test_a_message_alice_sends_leaves_through_her_session_only(connected, gateway, waha):
    chat = "4915199999999@c.us"
    r = await gateway.post("/api/v1/waha/messages", headers=auth(ALICE), json={"chatId": chat, "text": "from alice"})
    assert r.status_code == 201, r.text
    sent_id = r.json()["id"]
    assert r.json()["chatId"] == chat
    alice_sent = (await waha.get(f"/_emulator/sessions/{SESSIONS[ALICE]}/sent")).json()
    bob_sent = (await waha.get(f"/_emulator/sessions/{SESSIONS[BOB]}/sent")).json()
    assert [m["text"] if "text" in m else m.get("body") for m in alice_sent if m.get("chatId", chat) == chat][-1] == "from alice"
    assert not any("from alice" in json.dumps(m) for m in bob_sent)

    async def stored():
        return [m for m in await history(gateway, ALICE, chat) if m["id"] == sent_id]

    [message] = await wait_until(stored, timeout=15, what="alice's sent message in her history")
    assert message["fromMe"] is True
    assert await history(gateway, BOB, chat) == []


async def test_a_duplicated_webhook_is_stored_once(connected, gateway, waha, stack):
    duplicates_before = await persister_duplicates(stack)
    await waha.post("/_emulator/faults", json={"duplicateWebhooks": 2})
    sender = "4915177777777"
    raw_id = "DUP" + uuid.uuid4().hex[:12].upper()
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[ALICE]}/inbound", json={"from": sender, "body": "once", "id": raw_id})
    wa_id = r.json()["id"]
    await waha.post("/_emulator/faults", json={})
    # And the very same signed webhook again, straight to ingest, three times.
    envelope = {**webhook(ALICE, "message", r.json()), "id": "evt_01" + uuid.uuid4().hex[:24]}
    path, body, headers = signed(envelope)
    async with httpx.AsyncClient(base_url=stack.url("webhook-ingest")) as ingest:
        for _ in range(3):
            resp = await ingest.post(path, content=body, headers=headers)
            assert resp.status_code < 300, resp.text

    async def stored():
        return [m for m in await history(gateway, ALICE, f"{sender}@c.us") if m["id"] == wa_id]

    await wait_until(stored, timeout=15, what="the duplicated message stored")
    # WAHA's `message` and `message.any`, each delivered 3 times, and our 3 posts: 8 of 9 are duplicates.
    async def duplicates_processed():
        return await persister_duplicates(stack) >= duplicates_before + 8

    await wait_until(duplicates_processed, timeout=15, what="the persister to process every duplicate")
    assert len(await stored()) == 1


async def persister_duplicates(stack) -> float:
    async with httpx.AsyncClient(base_url=stack.url("persister")) as client:
        text = (await client.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("persister_events_duplicate_total "))


async def test_a_private_chat_gets_the_senders_name(connected, gateway, waha):
    sender = "4915144444444"
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[ALICE]}/inbound", json={"from": sender, "body": "hallo", "pushName": "Hans"})
    assert r.status_code == 201, r.text

    async def named():
        chats = (await gateway.get("/api/v1/waha/chats", headers=auth(ALICE))).json()["items"]
        return [c for c in chats if c["chatId"] == f"{sender}@c.us" and c["name"] == "Hans"]

    [chat] = await wait_until(named, timeout=15, what="the chat named after its sender")
    assert chat["isGroup"] is False and chat["lastMessage"]["body"] == "hallo"


async def test_bob_reads_nothing_of_alices_through_any_endpoint(connected, gateway, waha):
    sender = "4915166666666"
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[ALICE]}/inbound", json={"from": sender, "body": "secret for alice"})
    wa_id = r.json()["id"]

    async def stored():
        return [m for m in await history(gateway, ALICE, f"{sender}@c.us") if m["id"] == wa_id]

    await wait_until(stored, timeout=15, what="alice's secret stored")
    for path, params in (
        ("/api/v1/waha/chats", {}),
        ("/api/v1/waha/groups", {}),
        ("/api/v1/waha/contacts", {}),
        ("/api/v1/waha/messages", {"chatId": f"{sender}@c.us"}),
        ("/api/v1/waha/status", {}),
        ("/api/v1/waha/qr", {}),
    ):
        r = await gateway.get(path, params=params, headers=auth(BOB))
        assert r.status_code == 200, (path, r.text)
        text = r.text
        assert "secret for alice" not in text and sender not in text and "wf_alice" not in text, path
        assert PHONES[ALICE] not in text, path
    status = (await gateway.get("/api/v1/waha/status", headers=auth(BOB))).json()
    assert status["userId"] == BOB and status["session"] == SESSIONS[BOB]


async def test_a_forged_webhook_is_refused_and_stores_nothing(connected, gateway, stack):
    payload = {
        "id": "false_4915155555555@c.us_FORGED1",
        "timestamp": 1_700_000_000,
        "from": "4915155555555@c.us",
        "to": f"{PHONES[ALICE]}@c.us",
        "fromMe": False,
        "body": "forged",
        "hasMedia": False,
    }
    path, body, _ = signed({**webhook(ALICE, "message", payload), "id": "evt_01forged"})
    wrong = sign("not-the-key", body)
    fleet_keyed = sign(SECRETS["WEBHOOK_HMAC_KEY"], body)  # the fleet key itself: only a session's own key counts
    async with httpx.AsyncClient(base_url=stack.url("webhook-ingest")) as ingest:
        r1 = await ingest.post(path, content=body, headers={"X-Webhook-Hmac": wrong, "content-type": "application/json"})
        r2 = await ingest.post(path, content=body, headers={"content-type": "application/json"})
        r3 = await ingest.post(path, content=body, headers={"X-Webhook-Hmac": fleet_keyed, "content-type": "application/json"})
        r4 = await ingest.post("/webhooks/waha", content=body, headers={"X-Webhook-Hmac": fleet_keyed, "content-type": "application/json"})
    assert [r.status_code for r in (r1, r2, r3, r4)] == [401] * 4
    assert r1.json()["error"]["code"]
    assert await history(gateway, ALICE, "4915155555555@c.us") == []
