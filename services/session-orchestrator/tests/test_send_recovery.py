"""A send left pending by a crash between WAHA's sendText and the result, settled by asking WAHA.

Each scenario writes the `sends` claim exactly as a process that died at that point left it, and
(where it got that far) makes the send in the emulator the way that process did; then the same
Idempotency-Key arrives again.
"""

import asyncio
from datetime import timedelta

import pytest

from fleet_shared.contracts import utcnow
from fleet_shared.contracts.commands import SendMessage
from session_orchestrator.adapters.mongo_sends import MongoSendLedger
from session_orchestrator.domain.sending import Claim, fingerprint, settle

pytestmark = pytest.mark.integration

CHAT = "4915112345678@c.us"
NOW = utcnow()


def test_settle_decides_from_what_was_recorded_and_what_waha_has():
    pending = Claim("pending", message_id="3EB0AA", sending_at=NOW, sending_until=NOW + timedelta(seconds=10))
    assert settle(pending, found=True, now=NOW) == "sent"
    assert settle(pending, found=False, now=NOW) == "unknown"  # that attempt may still be on its way
    assert settle(pending, found=False, now=NOW + timedelta(seconds=11)) == "send"
    assert settle(Claim("pending", sending_at=None), found=False, now=NOW) == "send"  # WAHA never called
    assert settle(Claim("pending", sending_at=NOW), found=False, now=NOW + timedelta(hours=1)) == "unknown"  # no id
    assert settle(Claim("pending", tracked=False), found=False, now=NOW + timedelta(hours=1)) == "unknown"


async def crashed_claim(db, user: str, key: str, text: str, message_id: str | None, *, started_ago: float = 0, budget: float = 10) -> None:
    ledger = MongoSendLedger(db)
    claim = await ledger.claim(user, f"key:{key}", fingerprint(CHAT, text, None), "cmd-crashed", utcnow())
    assert claim.outcome == "claimed"
    if message_id is not None:
        await ledger.mark_sending(user, f"key:{key}", message_id, utcnow() - timedelta(seconds=started_ago), budget)


async def new_id(orchestrator, session: str) -> str:
    r = await orchestrator.waha.http.get(f"/api/{session}/new-message-id")
    assert r.status_code == 200, r.text
    return r.json()["id"]


async def test_a_send_waha_made_before_the_crash_answers_that_message(orchestrator, db):
    await orchestrator.link("ruth", phone="15550007777")
    raw = await new_id(orchestrator, "wf_ruth")
    await crashed_claim(db, "ruth", "k-crash", "hello", raw)
    made = await orchestrator.waha.http.post("/api/sendText", json={"session": "wf_ruth", "chatId": CHAT, "text": "hello", "id": raw})
    assert made.status_code == 201

    reply = await orchestrator.ask(SendMessage(chat_id=CHAT, text="hello", idempotency_key="k-crash"), "ruth")
    again = await orchestrator.ask(SendMessage(chat_id=CHAT, text="hello", idempotency_key="k-crash"), "ruth")

    assert reply.ok, reply
    assert reply.data["id"] == made.json()["id"] == f"true_{CHAT}_{raw}"
    assert again.data == reply.data
    assert [m["text"] for m in await orchestrator.waha.sent("wf_ruth")] == ["hello"]


async def test_a_send_waha_never_got_is_made_once_its_attempt_is_over(orchestrator, db):
    await orchestrator.link("sam", phone="15550007778")
    raw = await new_id(orchestrator, "wf_sam")
    await crashed_claim(db, "sam", "k-lost", "lost", raw, started_ago=60)

    reply = await orchestrator.ask(SendMessage(chat_id=CHAT, text="lost", idempotency_key="k-lost"), "sam")

    assert reply.ok, reply
    assert reply.data["id"] == f"true_{CHAT}_{raw}"  # the id recorded before the crash
    assert [m["text"] for m in await orchestrator.waha.sent("wf_sam")] == ["lost"]


async def test_a_send_that_may_still_be_on_its_way_is_not_made_again(orchestrator, db):
    await orchestrator.link("tia", phone="15550007779")
    await crashed_claim(db, "tia", "k-busy", "busy", await new_id(orchestrator, "wf_tia"), budget=60)

    reply = await orchestrator.ask(SendMessage(chat_id=CHAT, text="busy", idempotency_key="k-busy"), "tia")

    assert (reply.ok, reply.error.code, reply.error.status) == (False, "send_pending", 409)
    assert await orchestrator.waha.sent("wf_tia") == []


async def test_a_claim_that_never_reached_waha_is_sent(orchestrator, db):
    await orchestrator.link("uma", phone="15550007780")
    await crashed_claim(db, "uma", "k-early", "early", None)

    reply = await orchestrator.ask(SendMessage(chat_id=CHAT, text="early", idempotency_key="k-early"), "uma")

    assert reply.ok, reply
    assert [m["text"] for m in await orchestrator.waha.sent("wf_uma")] == ["early"]


async def test_a_repeat_of_a_finished_send_is_answered_without_waiting_for_waha(orchestrator):
    await orchestrator.link("vic", phone="15550007781")
    command = SendMessage(chat_id=CHAT, text="once", idempotency_key="k-done")
    first = await orchestrator.ask(command, "vic")
    assert first.ok, first
    await orchestrator.waha.faults(latencyMs=6_000)  # WAHA now answers after the repeat is due
    try:
        again = await asyncio.wait_for(orchestrator.ask(command, "vic"), 3)
    finally:
        await orchestrator.waha.faults()
    assert again.data == first.data
    assert [m["text"] for m in await orchestrator.waha.sent("wf_vic")] == ["once"]
