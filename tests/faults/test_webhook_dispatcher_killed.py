"""`kill -9` the webhook-dispatcher while the receiver holds a delivery, send more events while it
is down, start it again: every event is delivered at least once, in `seq` order, and the receiver
can drop the repeats by `Webhook-Id`."""

import asyncio
import json

import pytest

from fleet_devtools.localdev import wait_until
from waha_emulator.testing import WebhookReceiver

from ..helpers import auth, connect, inbound, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

BEFORE, DURING = 10, 10  # messages before the kill, and while the dispatcher is down
SENDER = "4915100000077"


async def stream_after(gateway, user: str, after: int) -> list[dict]:
    r = await gateway.get("/api/v1/events", params={"after": after, "limit": 500}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_dispatcher_killed_mid_delivery_delivers_every_event_in_order_after_a_restart(healthy, gateway, waha):
    user = unique_user("hook_kill")
    await connect(gateway, waha, user, "15550900001")
    async with WebhookReceiver() as receiver:
        before = (await gateway.get("/api/v1/events", params={"after": 0, "limit": 500}, headers=auth(user))).json()
        start = before["next"]
        r = await gateway.post("/api/v1/webhooks", headers=auth(user), json={"url": receiver.url_for("/hook")})
        assert r.status_code == 201, r.text
        hook = r.json()
        gate = receiver.hold("/hook")
        for n in range(BEFORE):
            await inbound(waha, user, SENDER, f"before {n}")
        await wait_until(lambda: _async(receiver.held.get("/hook") == 1), timeout=20, what="a delivery held")

        healthy.kill("webhook-dispatcher")  # SIGKILL while its POST waits for an answer
        gate.set()  # the receiver takes the held one now: the dead dispatcher never hears it did
        for n in range(DURING):
            await inbound(waha, user, SENDER, f"during {n}")
        await asyncio.to_thread(healthy.start_again, "webhook-dispatcher")

        seen: dict[str, object] = {}

        async def every_one() -> list[dict] | None:
            expected = await stream_after(gateway, user, start)
            bodies = sum(1 for e in expected if e["type"] == "message.received")
            ids = {r.headers["webhook-id"] for r in receiver.to("/hook")}
            missing = [e["seq"] for e in expected if e["id"] not in ids]
            seen.update(stored=len(expected), messages_stored=bodies, missing_seqs=missing)
            return expected if bodies == BEFORE + DURING and not missing else None

        try:
            expected = await wait_until(every_one, timeout=90, interval=0.5, what="every event delivered")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {seen}") from exc

    got = receiver.to("/hook")
    first_seen: dict[str, int] = {}
    for request in got:
        event = json.loads(request.body)
        assert request.headers["webhook-id"] == event["id"]
        first_seen.setdefault(event["id"], event["seq"])
    seqs = list(first_seen.values())
    assert seqs == [e["seq"] for e in expected], "out of order, or an event missing"
    assert seqs == list(range(start + 1, start + 1 + len(seqs)))
    repeats = len(got) - len(first_seen)
    print(f"\n{len(first_seen)} events delivered across the kill, {repeats} delivered again (deduped by Webhook-Id)")
    async def all_recorded() -> bool:
        items = (await gateway.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 200},
                                   headers=auth(user))).json()["items"]
        return len(items) == len(seqs) and all(d["status"] == "delivered" for d in items)

    await wait_until(all_recorded, timeout=15, what="the delivery log: every one delivered")


async def _async(value):
    return value
