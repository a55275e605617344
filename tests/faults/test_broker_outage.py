"""3b: every service's RabbitMQ connection is cut while webhooks arrive.

During the outage webhook-ingest answers 503 and the gateway 503; the emulator (WAHA) retries its
webhooks; once the broker is reachable again every service reconnects by itself and every message
is stored exactly once. Only this system's connections are cut (its proxy): the shared broker and
everyone else's tests on it carry on.
"""

import time

import httpx
import pytest

from fleet_devtools.localdev import wait_until

from ..helpers import all_ready, auth, bounded, connect, inbound, metric, mongo, stored_messages, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

BEFORE, DURING, AFTER = 30, 40, 30
REFUSED_DURING_OUTAGE = 10


async def test_services_ride_out_a_broker_outage_and_lose_nothing(healthy, broker_proxy, gateway, waha):
    user = unique_user("outage")
    await connect(gateway, waha, user, "15550200002")
    expected: dict[str, str] = {}
    db = mongo(healthy)
    ingest = httpx.AsyncClient(base_url=healthy.url("webhook-ingest"), timeout=10)

    async def send(i: int) -> None:
        message = await inbound(waha, user, f"4915200{i % 5:05d}", f"outage message {i}")
        expected[message["id"]] = f"outage message {i}"

    async def refused() -> float:
        return await metric(ingest, "webhook_ingest_webhooks_total", outcome="unavailable")

    try:
        await bounded([lambda i=i: send(i) for i in range(BEFORE)], 8)
        refused_before = await refused()

        broker_proxy.down()  # every connection of this system to RabbitMQ is reset, new ones refused
        try:
            await bounded([lambda i=i: send(i) for i in range(BEFORE, BEFORE + DURING)], 8)

            async def ingest_refusing() -> bool:
                return await refused() >= refused_before + REFUSED_DURING_OUTAGE

            await wait_until(ingest_refusing, timeout=30, what="webhook-ingest answering 503 to WAHA")
            status = await gateway.get("/api/v1/waha/status", headers=auth(user))
            assert status.status_code == 503 and status.json()["error"]["code"] == "broker_unavailable"
            assert not await all_ready(healthy)
        finally:
            broker_proxy.up()

        back = time.monotonic()
        await wait_until(lambda: all_ready(healthy), timeout=30, what="every service reconnected by itself")
        reconnected = time.monotonic() - back
        await bounded([lambda i=i: send(i) for i in range(BEFORE + DURING, BEFORE + DURING + AFTER)], 8)

        async def all_stored() -> bool:
            return len(await stored_messages(db, user)) >= len(expected)

        await wait_until(all_stored, timeout=60, interval=0.5, what="every message stored")
        stored = await stored_messages(db, user)
        stats = (await waha.get("/_emulator/stats")).json()["webhooks"]
        assert (await gateway.get("/api/v1/waha/status", headers=auth(user))).json()["status"] == "WORKING"

        # The orchestrator's side reconnected too: a send goes out and is stored.
        sent = await gateway.post(
            "/api/v1/waha/messages", headers=auth(user), json={"chatId": "4915200000099@c.us", "text": "after"}
        )
        assert sent.status_code == 201, sent.text

        async def sent_stored() -> bool:
            return any(doc["id"] == sent.json()["id"] for doc in await stored_messages(db, user))

        await wait_until(sent_stored, timeout=30, what="the message sent after the outage stored")
    finally:
        await ingest.aclose()
        await db.close()

    print(f"\nevery service ready {reconnected:.1f}s after the broker came back; emulator: {stats}")
    assert len(expected) == BEFORE + DURING + AFTER
    assert sorted(doc["id"] for doc in stored) == sorted(expected)
    assert {doc["id"]: doc["body"] for doc in stored} == expected
    assert stats["retries"] > 0 and stats["dropped"] == 0, stats
