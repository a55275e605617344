import asyncio
import hashlib
import hmac
import json
import re

from waha_emulator.testing import WebhookReceiver, wait_until
from waha_emulator.webhooks import POOL_CONNECTIONS


async def test_headers_and_hmac_over_raw_body(emu, receiver) -> None:
    await emu.create("wh", url=receiver.url, events=["session.status"], hmac_key="s3cret",
                     customHeaders=[{"name": "X-Tenant", "value": "42"}])
    await wait_until(lambda: receiver.requests, message="a webhook")
    req = receiver.requests[0]
    h = req.headers
    assert req.method == "POST"
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == "WAHA/2026.7.1"
    assert h["x-tenant"] == "42"
    assert h["x-webhook-hmac-algorithm"] == "sha512"
    assert h["x-webhook-hmac"] == hmac.new(b"s3cret", req.body, hashlib.sha512).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{128}", h["x-webhook-hmac"])
    env = req.json
    assert h["x-webhook-timestamp"] == str(env["timestamp"])
    assert h["x-webhook-request-id"]
    assert set(env) == {"id", "timestamp", "event", "session", "metadata", "me", "payload", "engine", "environment"}
    assert re.fullmatch(r"evt_[0-9a-z]{26}", env["id"])
    assert env["event"] == "session.status" and env["metadata"] is None and env["me"] is None


async def test_no_hmac_headers_without_key(emu, receiver) -> None:
    await emu.create("nohmac", url=receiver.url, events=["session.status"])
    await wait_until(lambda: receiver.requests, message="a webhook")
    assert "x-webhook-hmac" not in receiver.requests[0].headers


async def test_only_subscribed_events_are_delivered(emu, receiver) -> None:
    await emu.link("sub", url=receiver.url, events=["message"])
    await emu.client.post("/api/sendText", json={"session": "sub", "chatId": "1", "text": "x"})
    await emu.client.post("/_emulator/sessions/sub/inbound", json={"from": "2", "body": "y"})
    await receiver.wait_for_event("message")
    await wait_until(lambda: emu.emulator.webhooks.stats.in_flight == 0, message="idle")
    assert {e["event"] for e in receiver.events()} == {"message"}


async def test_retries_reuse_request_id_body_and_signature(make_emu) -> None:
    emu = make_emu(starting_delay=1.5)  # keep the next status event out of the scripted answers
    async with WebhookReceiver(script=[500, 500]) as rcv:
        await emu.create("retry", url=rcv.url, events=["session.status"], hmac_key="k",
                         retries={"policy": "constant", "delaySeconds": 0.05, "attempts": 5})
        first = lambda: [r for r in rcv.requests if r.json["payload"]["status"] == "STARTING"]  # noqa: E731
        await wait_until(lambda: any(r.status == 200 for r in first()), message="third POST succeeds")
        posts = first()
        assert [p.status for p in posts] == [500, 500, 200]
        assert len({p.headers["x-webhook-request-id"] for p in posts}) == 1
        assert len({p.body for p in posts}) == 1
        assert len({p.headers["x-webhook-hmac"] for p in posts}) == 1
        assert len({p.headers["x-webhook-timestamp"] for p in posts}) == 1
    stats = emu.emulator.webhooks.stats
    assert stats.failed >= 2 and stats.retries >= 2 and stats.delivered >= 1


async def test_delivery_is_dropped_after_the_last_retry(emu) -> None:
    async with WebhookReceiver(default_status=503) as rcv:
        await emu.create("drop", url=rcv.url, events=["session.status"], start=False,
                         retries={"policy": "linear", "delaySeconds": 0.02, "attempts": 2})
        await emu.client.post("/api/sessions/drop/start")
        await wait_until(lambda: emu.emulator.webhooks.stats.dropped >= 1, message="a dropped delivery")
        starting = [r for r in rcv.requests if r.json["payload"]["status"] == "STARTING"]
        assert len(starting) == 3  # first try + 2 retries
        stats = (await emu.client.get("/_emulator/stats")).json()["webhooks"]
    assert stats["dropped"] >= 1 and "503" in stats["lastError"]


async def test_retry_after_raises_the_delay(emu) -> None:
    async with WebhookReceiver(script=[429], headers={"Retry-After": "1"}) as rcv:
        await emu.create("ra", url=rcv.url, events=["session.status"], start=False,
                         retries={"policy": "constant", "delaySeconds": 0, "attempts": 3})
        await emu.client.post("/api/sessions/ra/start")
        await wait_until(lambda: len(rcv.requests) >= 1, message="first POST")
        loop_time = asyncio.get_running_loop().time
        t0 = loop_time()
        await wait_until(lambda: any(r.status == 200 and r.json["payload"]["status"] == "STARTING"
                                     for r in rcv.requests), timeout=5, message="retried POST")
        assert loop_time() - t0 >= 0.8


async def test_connection_errors_are_retried(emu) -> None:
    rcv = WebhookReceiver()
    await rcv.start()
    url = rcv.url
    await rcv.stop()  # nobody listens on that port now
    await emu.create("conn", url=url, events=["session.status"], start=False,
                     retries={"delaySeconds": 0, "attempts": 1})
    await emu.client.post("/api/sessions/conn/start")
    await wait_until(lambda: emu.emulator.webhooks.stats.dropped >= 1, message="dropped")
    assert emu.emulator.webhooks.stats.failed >= 2


async def test_events_log_lists_all_emitted_envelopes(emu) -> None:
    await emu.link("evlog")
    events = (await emu.client.get("/_emulator/events", params={"session": "evlog"})).json()
    assert [e["payload"]["status"] for e in events] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    assert json.dumps(events)  # plain JSON


async def test_deliveries_beyond_the_pool_wait_for_a_connection(emu, receiver) -> None:
    """More deliveries than connections: the pool's worth are in flight, the rest wait (not a failure)."""
    gate = receiver.hold("/held")
    await emu.link("many", url=receiver.url_for("/held"), events=["message.any"])
    texts = [f"m{i}" for i in range(POOL_CONNECTIONS + 20)]
    for text in texts:
        r = await emu.client.post("/api/sendText", json={"session": "many", "chatId": "1", "text": text})
        assert r.status_code == 201, r.text
    await wait_until(lambda: receiver.held.get("/held") == POOL_CONNECTIONS, message="every connection held")
    stats = emu.emulator.webhooks.stats
    assert stats.in_flight == len(texts) and stats.failed == 0
    gate.set()
    await wait_until(lambda: stats.delivered == len(texts), message="all delivered")
    assert sorted(e["payload"]["body"] for e in receiver.events("message.any")) == sorted(texts)
    assert stats.failed == 0 and stats.retries == 0
