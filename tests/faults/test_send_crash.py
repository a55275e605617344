"""6: the same Idempotency-Key retried across an orchestrator crash between WAHA's sendText and the
reply sends one WhatsApp message, and every answer carries the same id."""

import asyncio
import uuid

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..helpers import auth, connect, mongo, stored_messages, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

CHAT = "4915600000001@c.us"
HOLD_MS = 3000  # WAHA holds the user's calls this long: the crash lands while sendText is in WAHA's hands
RETRYABLE = {409, 503, 504}  # send_pending, broker or WAHA unavailable, no answer in time


async def test_a_crash_between_the_waha_call_and_the_reply_sends_once(healthy, gateway, waha):
    user = unique_user("crash")
    session = session_name_for(user)
    await connect(gateway, waha, user, "15550600006")
    key = f"crash-{uuid.uuid4().hex[:8]}"
    body = {"chatId": CHAT, "text": "exactly once, please"}
    headers = {**auth(user), "Idempotency-Key": key}

    async def send():
        return await gateway.post("/api/v1/waha/messages", headers=headers, json=body)

    await waha.post("/_emulator/faults", json={"latencyMs": HOLD_MS, "sessions": [session]})
    first = asyncio.create_task(send())

    async def send_text_in_flight() -> bool:
        calls = (await waha.get("/_emulator/calls", params={"path": "/api/sendText", "session": session})).json()
        return any(c["status"] is None for c in calls)

    await wait_until(send_text_in_flight, timeout=20, what="sendText held by WAHA")
    healthy.kill("session-orchestrator")  # SIGKILL: the reply is never sent, the command never acked
    await waha.post("/_emulator/faults", json={})
    await asyncio.to_thread(healthy.start_again, "session-orchestrator")

    answers = [await first]

    async def answered() -> bool:
        if answers[-1].status_code == 201:
            return True
        assert answers[-1].status_code in RETRYABLE, answers[-1].text
        answers.append(await send())
        return answers[-1].status_code == 201

    await wait_until(answered, timeout=60, interval=0.5, what="the retried send answered")
    answers.append(await send())  # and once more, after it succeeded

    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    sent = [m for m in (await waha.get(f"/_emulator/sessions/{session}/sent")).json() if m["text"] == body["text"]]
    print(f"\nanswers: {[a.status_code for a in answers]}")
    assert len(ids) == 1 and len(sent) == 1, (answers, sent)
    assert sent[0]["id"] == ids.pop()

    db = mongo(healthy)
    try:

        async def stored_once() -> bool:
            return [d["id"] for d in await stored_messages(db, user) if d.get("body") == body["text"]] == [sent[0]["id"]]

        await wait_until(stored_once, timeout=20, what="the message stored once")
    finally:
        await db.close()
