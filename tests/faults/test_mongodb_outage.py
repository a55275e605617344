"""3c: MongoDB (SecantusDB) is down for a while: the persister stops acking, retries, and loses nothing.

While the database is away the events stay in RabbitMQ: the persister retries each write with
backoff, then hands the delivery back to the queue unacked; once SecantusDB is back (same data
directory) every event is stored, exactly once, and nothing was dead-lettered.
"""

import httpx
import pytest

from fleet_devtools.localdev import wait_until

from ..helpers import bounded, deliver, metric, mongo, stored_messages, unique_user, wa_message, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

WEBHOOKS = 100


async def test_the_persister_holds_events_while_mongodb_is_down(healthy, persister):
    user = unique_user("nomongo")
    hooks = [
        webhook(user, "message.any", wa_message(f"MONGO{i:06d}", "4915300000001", f"while down {i}", timestamp=1_700_000_000 + i))
        for i in range(WEBHOOKS)
    ]
    failures_before = await metric(persister, "persister_write_failures_total")
    requeued_before = await metric(persister, "persister_events_requeued_total")
    db = mongo(healthy)
    try:
        healthy.mongo.stop()
        try:

            async def persister_not_ready() -> bool:
                r = await persister.get("/readyz")
                return r.status_code == 503 and "mongodb" in r.json()["failing"]

            await wait_until(persister_not_ready, timeout=15, what="the persister noticing MongoDB is gone")
            async with httpx.AsyncClient(base_url=healthy.url("webhook-ingest"), timeout=30) as ingest:
                await bounded([lambda h=h: deliver(ingest, h) for h in hooks], 8)

            async def handed_back() -> bool:
                return await metric(persister, "persister_events_requeued_total") > requeued_before

            # Retried with backoff until the retry window closed, then handed back to the queue unacked.
            await wait_until(handed_back, timeout=30, what="a delivery handed back to the queue")
            assert await metric(persister, "persister_write_failures_total") > failures_before
        finally:
            healthy.mongo.start()

        async def all_stored() -> bool:
            return len(await stored_messages(db, user)) >= WEBHOOKS

        await wait_until(all_stored, timeout=60, interval=0.5, what="every event stored once MongoDB is back")
        stored = await stored_messages(db, user)
    finally:
        await db.close()

    assert sorted(doc["id"] for doc in stored) == sorted(h["payload"]["id"] for h in hooks)
    assert (await persister.get("/readyz")).status_code == 200
    assert await metric(persister, "fleet_dead_letter_messages") == 0
