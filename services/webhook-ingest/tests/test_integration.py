"""webhook-ingest against the real RabbitMQ, under a topology (prefix) of the test's own."""

import asyncio
import json
from datetime import UTC, datetime

import aio_pika
import pytest
from prometheus_client import REGISTRY

from fleet_devtools.localdev import free_port, wait_until
from fleet_devtools.testing.proxy import TcpProxy
from fleet_shared.contracts import deterministic_id, parse_envelope
from fleet_shared.routing import one_user_binding
from fleet_shared.waha import session_webhook_key

pytestmark = pytest.mark.integration


async def bind(channel, exchange: str, key: str) -> aio_pika.abc.AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key=key)
    return queue


async def next_message(queue, timeout: float = 10.0) -> aio_pika.abc.AbstractIncomingMessage:
    return await wait_until(lambda: queue.get(no_ack=True, fail=False), timeout, what=f"a message on {queue.name}")


async def is_empty(queue) -> bool:
    return await queue.get(no_ack=True, fail=False) is None


def messages_of(user_id: str) -> str:
    """The user's message events (their `user.<id>.#` also gets the `session.active` reports)."""
    return f"user.{user_id}.message.*"


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("webhook_ingest_webhooks_total", {"outcome": outcome}) or 0.0


async def test_ready_once_connected(ingest):
    assert (await ingest.get("/readyz")).json() == {"status": "ready"}


async def test_incoming_message_reaches_the_users_binding(ingest, topology, amqp, waha):
    alice = await bind(amqp, topology.events, one_user_binding("alice"))
    persister_view = await bind(amqp, topology.events, "user.*.message.*")
    before = counted("published")
    body = waha.webhook("message.any", waha.message(body="hello"), event_id="evt_in_1")

    response = await waha.post(ingest, body)

    expected_id = deterministic_id("alice", "message", body["payload"]["id"])
    assert response.status_code == 200
    assert response.json() == {"status": "published", "id": expected_id, "type": "message.received"}
    # alice's first message through this ingest: her session is reported in use, ahead of the message.
    report = await next_message(alice)
    assert report.routing_key == "user.alice.session.active"
    assert parse_envelope(json.loads(report.body)).data.message_id == body["payload"]["id"]
    msg = await next_message(alice)
    assert msg.routing_key == "user.alice.message.received"
    assert msg.message_id == expected_id
    assert msg.correlation_id == "evt_in_1"
    assert msg.headers["x-user-id"] == "alice"
    assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    env = parse_envelope(json.loads(msg.body))
    assert (env.id, env.type, env.user_id, env.session, env.correlation_id) == (
        expected_id, "message.received", "alice", "wf_alice", "evt_in_1",
    )
    assert (env.data.chat_id, env.data.body, env.data.from_me) == ("11111111111@c.us", "hello", False)
    assert (await next_message(persister_view)).message_id == expected_id
    assert counted("published") == before + 1


async def test_published_event_on_the_wire(ingest, topology, amqp, waha):
    """Every AMQP property and the body's exact bytes, as consumers see them."""
    alice = await bind(amqp, topology.events, messages_of("alice"))
    body = waha.webhook("message", waha.message(body="grüße ☃", raw_id="W" * 20), event_id="evt_wire")
    before = datetime.now(UTC).replace(microsecond=0)

    assert (await waha.post(ingest, body)).status_code == 200

    msg = await next_message(alice)
    expected_id = deterministic_id("alice", "message", body["payload"]["id"])
    assert (msg.exchange, msg.routing_key) == (topology.events, "user.alice.message.received")
    assert (msg.message_id, msg.correlation_id, msg.type) == (expected_id, "evt_wire", "message.received")
    assert (msg.content_type, msg.content_encoding, msg.app_id, msg.user_id) == ("application/json", None, "webhook-ingest", None)
    assert (msg.delivery_mode, msg.priority, msg.reply_to, msg.expiration) == (aio_pika.DeliveryMode.PERSISTENT, 0, None, None)
    assert {k: v for k, v in msg.headers.items() if k != "x-delivery-count"} == {"x-user-id": "alice", "x-schema-version": 1}
    assert before <= msg.timestamp <= datetime.now(UTC)
    # Compact UTF-8 JSON, non-ASCII unescaped: the bytes FastStream's publish sent.
    assert msg.body == json.dumps(json.loads(msg.body), separators=(",", ":"), ensure_ascii=False).encode()
    assert "grüße ☃".encode() in msg.body
    env = parse_envelope(json.loads(msg.body))
    assert (env.id, env.correlation_id, env.data.body) == (expected_id, "evt_wire", "grüße ☃")


async def test_own_message_is_message_sent(ingest, topology, amqp, waha):
    alice = await bind(amqp, topology.events, messages_of("alice"))
    body = waha.webhook("message.any", waha.message(from_me=True, peer="22222222222@c.us"))
    assert (await waha.post(ingest, body)).status_code == 200
    msg = await next_message(alice)
    assert msg.routing_key == "user.alice.message.sent"
    assert json.loads(msg.body)["data"]["chatId"] == "22222222222@c.us"


async def test_message_and_message_any_carry_the_same_message_id(ingest, topology, amqp, waha):
    alice = await bind(amqp, topology.events, messages_of("alice"))
    payload = waha.message(raw_id="DUPLICATE00000000001")
    assert (await waha.post(ingest, waha.webhook("message", payload, event_id="evt_m"))).status_code == 200
    assert (await waha.post(ingest, waha.webhook("message.any", payload, event_id="evt_a"))).status_code == 200
    first, second = await next_message(alice), await next_message(alice)
    assert first.message_id == second.message_id == deterministic_id("alice", "message", payload["id"])
    assert {first.correlation_id, second.correlation_id} == {"evt_m", "evt_a"}


async def test_each_user_gets_only_their_own_events(ingest, topology, amqp, waha):
    alice = await bind(amqp, topology.events, messages_of("alice"))
    bob = await bind(amqp, topology.events, messages_of("bob"))
    to_alice = waha.webhook("message", waha.message(body="for alice", raw_id="A" * 20), user_id="alice")
    to_bob = waha.webhook("message", waha.message(body="for bob", raw_id="B" * 20), user_id="bob")

    assert (await waha.post(ingest, to_alice)).status_code == 200
    assert (await waha.post(ingest, to_bob)).status_code == 200

    got_alice, got_bob = await next_message(alice), await next_message(bob)
    assert got_alice.routing_key == "user.alice.message.received"
    assert json.loads(got_alice.body)["data"]["body"] == "for alice"
    assert got_bob.routing_key == "user.bob.message.received"
    assert json.loads(got_bob.body)["data"]["body"] == "for bob"
    # Both publishes were confirmed before their 200, so anything misrouted would be here already.
    assert await is_empty(alice)
    assert await is_empty(bob)


async def test_ack_and_session_status_are_published(ingest, topology, amqp, waha):
    alice = await bind(amqp, topology.events, one_user_binding("alice"))
    ack = waha.webhook("message.ack", waha.ack(ack=3), event_id="evt_ack")
    status = waha.webhook("session.status", waha.status("WORKING"), event_id="evt_status")
    assert (await waha.post(ingest, ack)).status_code == 200
    assert (await waha.post(ingest, status)).status_code == 200

    got_ack, got_status = await next_message(alice), await next_message(alice)
    assert got_ack.routing_key == "user.alice.message.ack"
    assert got_ack.message_id == deterministic_id("alice", "ack", ack["payload"]["id"], "3")
    assert got_status.routing_key == "user.alice.session.status_reported"
    assert got_status.message_id == deterministic_id("alice", "waha-event", "evt_status")
    data = json.loads(got_status.body)["data"]
    assert data == {
        "status": "WORKING", "phoneNumber": "79111111111", "pushName": "Shop",
        "reportedAtMs": status["timestamp"], "wahaEventId": "evt_status",
    }


async def test_status_reports_reach_the_orchestrator_partitions(ingest, topology, amqp, waha):
    status = waha.webhook("session.status", waha.status("SCAN_QR_CODE"), event_id="evt_qr")
    assert (await waha.post(ingest, status)).status_code == 200
    expected = deterministic_id("alice", "waha-event", "evt_qr")

    received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(message)
        await message.ack()

    # Single-active-consumer quorum queues refuse basic.get, so consume them.
    for name in topology.orchestrator_command_queues:
        await (await amqp.get_queue(name, ensure=False)).consume(collect)

    async def in_some_partition():
        return received[0] if received else None

    msg = await wait_until(in_some_partition, 10, what="the status report in an orchestrator partition")
    assert msg.message_id == expected


async def test_refused_webhooks_publish_nothing(ingest, topology, amqp, waha):
    everything = await bind(amqp, topology.events, "#")
    body = waha.encode(waha.webhook("message", waha.message(body="forged")))
    missing = await ingest.post("/webhooks/waha/wf_alice", content=body, headers={"content-type": "application/json"})
    wrong = await waha.post(ingest, body, key="wrong-key")
    not_json = await waha.post(ingest, b"{oops")
    too_long = await waha.post(ingest, waha.webhook("message", waha.message(id="x" * 1000)))
    assert (missing.status_code, wrong.status_code, not_json.status_code, too_long.status_code) == (401, 401, 400, 422)
    assert missing.json()["error"]["code"] == wrong.json()["error"]["code"] == "invalid_signature"

    control = waha.webhook("message", waha.message(body="control", raw_id="C" * 20))
    assert (await waha.post(ingest, control)).status_code == 200
    report, message = await next_message(everything), await next_message(everything)
    assert report.routing_key == "user.alice.session.active"
    assert message.message_id == deterministic_id("alice", "message", control["payload"]["id"])
    assert await is_empty(everything)


async def test_too_large_bodies_are_413(rabbitmq_url, topology, run_app, settings_for, waha):
    settings = settings_for(rabbitmq_url, topology.prefix, topology.partitions, webhook_max_bytes=1024)
    async with run_app(settings) as client:
        big = waha.webhook("message", waha.message(body="x" * 2000))
        declared = await waha.post(client, big)
        assert declared.status_code == 413

        async def stream():
            for _ in range(100):
                yield b"y" * 512

        streamed = await client.post("/webhooks/waha/wf_alice", content=stream(), headers={"x-webhook-hmac": "00"})
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "payload_too_large"


async def test_unknown_session_is_parked_and_not_routed_to_anyone(ingest, topology, amqp, waha):
    everything = await bind(amqp, topology.events, "#")
    parked_queue = await amqp.get_queue(topology.ingest_parked, ensure=False)
    claims_alice = waha.webhook("message", waha.message(body="spoof"), session="wf_mallory",
                                metadata={"fleet.userId": "alice"}, event_id="evt_park_1")
    raw = waha.encode(claims_alice)
    before = counted("parked")

    response = await waha.post(ingest, claims_alice)  # signed with wf_mallory's key, as WAHA would

    assert response.status_code == 202
    assert response.json() == {"status": "parked"}
    parked = await next_message(parked_queue)
    assert parked.body == raw  # the raw webhook, byte for byte
    assert parked.headers["x-park-reason"] == "unknown_session"
    assert parked.headers["x-waha-session"] == "wf_mallory"
    assert parked.headers["x-waha-event"] == "message"
    assert parked.headers["x-webhook-request-id"] == "req-1"
    assert parked.headers["x-webhook-hmac"] == waha.headers(raw, session_webhook_key(waha.key, "wf_mallory"))["X-Webhook-Hmac"]
    assert parked.correlation_id == "evt_park_1"
    assert parked.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert parked.message_id == deterministic_id("parked", "wf_mallory", "evt_park_1")
    assert (parked.type, parked.content_type, parked.app_id) == ("waha.webhook", "application/json", "webhook-ingest")
    assert parked.timestamp is not None
    assert counted("parked") == before + 1

    no_metadata = waha.webhook("session.status", waha.status(), session="default", metadata=None, event_id="evt_park_2")
    assert (await waha.post(ingest, no_metadata)).status_code == 202
    assert json.loads((await next_message(parked_queue)).body)["id"] == "evt_park_2"

    control = waha.webhook("message", waha.message(body="control", raw_id="D" * 20))
    assert (await waha.post(ingest, control)).status_code == 200
    # The spoofed message was alice's first: had it been routed, this report would be its, not the control's.
    report = parse_envelope(json.loads((await next_message(everything)).body))
    assert (report.type, report.data.message_id) == ("session.active", control["payload"]["id"])
    assert (await next_message(everything)).message_id == deterministic_id("alice", "message", control["payload"]["id"])
    assert await is_empty(everything)


async def test_unreachable_broker_answers_503(run_app, settings_for, waha):
    settings = settings_for(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "unreachable")
    async with run_app(settings) as client:
        response = await waha.post(client, waha.webhook("message.any", waha.message()))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "broker_unavailable"
        assert (await client.get("/readyz")).status_code == 503


async def test_serves_503_until_rabbitmq_is_back(rabbitmq_url, topology, amqp, run_app, settings_for, waha):
    """RabbitMQ down at start, then up, then gone, then back: 503 while gone, published when back."""
    alice = await bind(amqp, topology.events, messages_of("alice"))
    with TcpProxy.to_url(rabbitmq_url) as proxy:
        proxy.down()
        async with run_app(settings_for(proxy.url_for(rabbitmq_url), topology.prefix, topology.partitions)) as client:
            body = waha.webhook("message", waha.message(raw_id="E" * 20), event_id="evt_outage")
            assert (await waha.post(client, body)).status_code == 503

            proxy.up()

            async def ready():
                return (await client.get("/readyz")).status_code == 200

            await wait_until(ready, 20, what="readyz once RabbitMQ is reachable")
            assert (await waha.post(client, body)).status_code == 200
            assert (await next_message(alice)).message_id == deterministic_id("alice", "message", body["payload"]["id"])

            proxy.down()
            await wait_until(lambda: _not(ready), 20, what="readyz failing once RabbitMQ is gone")
            assert (await waha.post(client, body)).status_code == 503

            proxy.up()

            async def published():
                return (await waha.post(client, body)).status_code == 200

            await wait_until(published, 30, interval=0.2, what="publishing again after RabbitMQ came back")
            assert (await next_message(alice)).message_id == deterministic_id("alice", "message", body["payload"]["id"])


async def _not(check) -> bool:
    return not await check()


async def test_an_event_no_queue_takes_is_refused_not_lost(ingest, topology, amqp, waha):
    """Published as mandatory: with nothing bound for it, WAHA gets 503 (and retries) instead of a 200."""
    # Every queue the topology binds to message events (the persister's).
    bindings = [b for b in topology.bindings() if b.source == topology.events and not b.to_exchange and ".message." in b.routing_key]
    assert bindings
    for b in bindings:
        await (await amqp.get_queue(b.destination, ensure=False)).unbind(topology.events, b.routing_key)
    try:
        response = await waha.post(ingest, waha.webhook("message", waha.message(raw_id="F" * 20)))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "broker_unavailable"
    finally:
        for b in bindings:
            await (await amqp.get_queue(b.destination, ensure=False)).bind(topology.events, b.routing_key)
    # The channel is still usable afterwards.
    assert (await waha.post(ingest, waha.webhook("message", waha.message(raw_id="G" * 20)))).status_code == 200


async def test_messages_are_reported_as_session_activity_once_per_interval_and_user(ingest, topology, amqp, waha):
    """The orchestrator's idle clock hears of alice's and bob's messages, chatting at once: once per
    ACTIVITY_REPORT_INTERVAL (60 s of message time) each, not once per message; acks are not use."""
    reports = await bind(amqp, topology.events, "user.*.session.active")
    messages = await bind(amqp, topology.events, "user.*.message.*")
    t0 = waha.message()["timestamp"]
    sent: dict[str, list[str]] = {"alice": [], "bob": []}

    async def chat(user: str) -> None:
        for n, ts in enumerate([t0, t0 + 1, t0 + 59, t0 + 61, t0 + 62]):
            payload = waha.message(raw_id=f"{user.upper()}{n:019d}", timestamp=ts, from_me=n % 2 == 1)
            sent[user].append(payload["id"])
            assert (await waha.post(ingest, waha.webhook("message.any", payload, user_id=user))).status_code == 200
        assert (await waha.post(ingest, waha.webhook("message.ack", waha.ack(ack=3), user_id=user))).status_code == 200

    await asyncio.gather(chat("alice"), chat("bob"))

    got = [parse_envelope(json.loads((await next_message(reports)).body)) for _ in range(4)]
    assert await is_empty(reports)  # every publish was confirmed before its 200
    for user in ("alice", "bob"):
        mine = [env for env in got if env.user_id == user]
        # The first message, then the first one more than 60 s after it.
        assert [int(env.occurred_at.timestamp()) for env in mine] == [t0, t0 + 61]
        assert [env.data.message_id for env in mine] == [sent[user][0], sent[user][3]]
        assert mine[0].id == deterministic_id(user, "active", mine[0].data.message_id)
    # Every message was still published, each once.
    assert len({(await next_message(messages)).message_id for _ in range(12)}) == 12
    assert await is_empty(messages)
