"""3a: `kill -9` the persister while 2,000 webhooks flow in, start it again: every message stored exactly once."""

import asyncio
import time

import httpx
import pytest

from fleet_devtools.localdev import wait_until

from ..helpers import bounded, deliver, metric, mongo, stored_messages, unique_user, wa_message, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

WEBHOOKS = 2000  # one message each
CHATS = 20
CONCURRENCY = 16  # WAHA's deliveries in flight at once


async def test_a_persister_killed_mid_stream_stores_every_message_exactly_once(healthy, persister):
    user = unique_user("kill9")
    hooks = [
        webhook(user, "message.any", wa_message(f"KILL{i:08d}", f"4915100{i % CHATS:05d}", f"message {i}", timestamp=1_700_000_000 + i))
        for i in range(WEBHOOKS)
    ]
    expected = {hook["payload"]["id"]: hook["payload"]["body"] for hook in hooks}
    stored_at_kill: list[int] = []
    db = mongo(healthy)

    async def one(ingest: httpx.AsyncClient, i: int) -> None:
        await deliver(ingest, hooks[i])
        if i == WEBHOOKS // 4:
            stored_at_kill.append(len(await stored_messages(db, user)))
            healthy.kill("persister")  # SIGKILL: whatever it had in flight is lost by the process, not by the broker
        elif i == WEBHOOKS // 2:
            await asyncio.to_thread(healthy.start_again, "persister")

    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=healthy.url("webhook-ingest"), timeout=30) as ingest:
            await bounded([lambda i=i: one(ingest, i) for i in range(WEBHOOKS)], CONCURRENCY)
        delivered = time.monotonic() - started

        async def all_stored() -> bool:
            return len(await stored_messages(db, user)) >= WEBHOOKS

        await wait_until(all_stored, timeout=90, interval=0.5, what=f"{WEBHOOKS} messages stored")
        stored = await stored_messages(db, user)
    finally:
        await db.close()
    print(f"\n{WEBHOOKS} webhooks delivered in {delivered:.1f}s, all stored after {time.monotonic() - started:.1f}s; "
          f"{stored_at_kill[0]} were stored when the persister was killed")

    assert 0 < stored_at_kill[0] < WEBHOOKS, "the kill must land while messages flow"
    ids = [doc["id"] for doc in stored]
    assert len(ids) == len(set(ids)) == WEBHOOKS
    assert {doc["id"]: doc["body"] for doc in stored} == expected
    assert await metric(persister, "fleet_dead_letter_messages") == 0
