"""`/api/v1/events` over real sockets: the gateway served by uvicorn, events published on the real broker."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import httpx
import pytest
import uvicorn
from aio_pika.exceptions import ChannelNotFoundEntity
from aiormq.exceptions import ChannelLockedResource
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fleet_devtools.localdev import free_port, wait_until
from fleet_devtools.testing.proxy import TcpProxy
from fleet_shared.contracts import Envelope, envelope
from fleet_shared.contracts.events import (
    MessageAck,
    MessageReceived,
    SessionQrUpdated,
    SessionStatusChanged,
    SessionStatusReported,
)
from fleet_shared.routing import user_key
from gateway.app import create_app

from .conftest import gateway_settings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def served(settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The gateway on a real port (uvicorn in this event loop), once it reached RabbitMQ."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    base = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{base}") as client:

            async def ready() -> bool:
                return server.started and (await client.get("/readyz")).status_code == 200

            await wait_until(ready, timeout=15, what="the served gateway ready")
        yield app, base
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def serve(topology, rabbitmq_url):
    def factory(**overrides: Any):
        values = {"rabbitmq_url": rabbitmq_url, "broker_prefix": topology.prefix, "orchestrator_partitions": topology.partitions}
        return served(gateway_settings(**{**values, **overrides}))

    return factory


@pytest.fixture
async def gateway(serve):
    async with serve() as running:
        yield running


@pytest.fixture
async def amqp(rabbitmq_url):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield connection


@pytest.fixture(autouse=True)
def _persister(persister):
    """Every socket here asks the persister for its head."""


@pytest.fixture
def publish(amqp, topology, stored):
    """Publish as the persister does once it stored an event: on `<p>.stream`, with the user's next `seq`."""
    seqs: dict[str, int] = {}

    async def publish(env: Envelope, *, mandatory: bool = False, seq: int | None = None) -> dict:
        if seq is None:
            seq = seqs[env.user_id] = seqs.get(env.user_id, 0) + 1
        body = {**env.wire(), "seq": seq}
        if all(e["seq"] != seq for e in stored.get(env.user_id, [])):
            stored.setdefault(env.user_id, []).append(body)
        channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
        try:
            exchange = await channel.get_exchange(topology.stream, ensure=False)
            await exchange.publish(
                aio_pika.Message(json.dumps(body).encode(), message_id=env.id),
                routing_key=user_key(env.user_id, env.type),
                mandatory=mandatory,
            )
        finally:
            await channel.close()
        return body

    return publish


def events_url(base: str, token: str | None = None) -> str:
    return f"ws://{base}/api/v1/events" + (f"?token={token}" if token else "")


def received(user: str, n: int, body: str | None = None) -> Envelope:
    return envelope(
        MessageReceived(id=f"false_1@c.us_{user}{n}", chat_id="1@c.us", from_me=False, from_="1@c.us",
                        body=body if body is not None else f"#{n}", timestamp=1_700_000_000 + n),
        user,
    )


async def frame(ws: ClientConnection, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def closed_with(ws: ClientConnection, timeout: float = 15) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    async with asyncio.timeout(timeout):
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
    rcvd = info.value.rcvd
    assert rcvd is not None, "the connection ended without a close frame"
    return rcvd.code, rcvd.reason


async def queue_state(amqp, name: str) -> str:
    probe = await amqp.channel()
    try:
        await probe.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return "gone"
    except ChannelLockedResource:
        return "exists"  # exclusive to the gateway's connection
    await probe.close()
    return "exists"


async def test_two_users_each_get_their_own_public_events_in_order(gateway, publish, tokens):
    app, base = gateway
    async with (
        connect(events_url(base), additional_headers=tokens.auth("alice")) as alice,
        connect(events_url(base, tokens.make("bob"))) as bob,
    ):
        await wait_until(lambda: _async(app.state.live.queues("alice") and app.state.live.queues("bob")),
                         timeout=10, what="both subscriptions")
        alice_events = [
            received("alice", 1),
            envelope(MessageAck(id="false_1@c.us_alice1", chat_id="1@c.us", ack=3, ack_name="READ"), "alice"),
            envelope(SessionStatusChanged(status="WORKING", previous_status="SCAN_QR_CODE"), "alice"),
            envelope(SessionQrUpdated(value="2@abc"), "alice"),
        ]
        bob_event = received("bob", 1)
        internal = envelope(SessionStatusReported(status="WORKING", reported_at_ms=1, waha_event_id="evt_1"), "alice")
        sent = [await publish(alice_events[0])]
        bob_sent = await publish(bob_event)
        await publish(internal, seq=1000)  # never streamed: refused
        await publish(received("carol", 1))
        for env in alice_events[1:]:
            sent.append(await publish(env))

        got = [await frame(alice) for _ in alice_events]
        assert got == sent and [f["seq"] for f in got] == [1, 2, 3, 4]
        assert await frame(bob) == bob_sent
        # A last event for each: had anything else been forwarded, it would come before these.
        last_alice, last_bob = received("alice", 99), received("bob", 99)
        await publish(last_alice)
        await publish(last_bob)
        assert (await frame(alice))["id"] == last_alice.id
        assert (await frame(bob))["id"] == last_bob.id


async def test_an_event_published_the_moment_the_socket_opens_arrives(gateway, publish, tokens):
    """The socket opens once its queue is bound: a client catching up at `open` (the console) misses
    nothing published after it, with no waiting for the subscription."""
    _, base = gateway
    for n in range(5):
        async with connect(events_url(base), additional_headers=tokens.auth("hana")) as ws:
            first = received("hana", n)
            await publish(first, mandatory=True)  # unroutable, had nothing bound hana's queue yet
            assert (await frame(ws))["id"] == first.id


async def test_closing_the_socket_deletes_its_queue_and_binding(gateway, publish, amqp, tokens):
    app, base = gateway
    user = "dora"
    async with connect(events_url(base), additional_headers=tokens.auth(user)) as ws:
        [queue] = await wait_until(lambda: _async(app.state.live.queues(user)), timeout=10, what="dora's queue")
        assert queue.startswith("amq.gen-")
        assert await queue_state(amqp, queue) == "exists"
        qr = envelope(SessionQrUpdated(value="2@x"), user)
        await publish(qr, mandatory=True)  # routed: only dora's live queue binds her qr_updated
        assert (await frame(ws))["id"] == qr.id
    await wait_until(lambda: _async(not app.state.live.queues(user)), timeout=10, what="the stream closed")
    assert await queue_state(amqp, queue) == "gone"
    with pytest.raises(aio_pika.exceptions.DeliveryError):  # unroutable: nothing binds it any more
        await publish(envelope(SessionQrUpdated(value="2@y"), user), mandatory=True)
    async with httpx.AsyncClient(base_url=f"http://{base}") as client:
        metrics = (await client.get("/metrics")).text
    assert "gateway_live_sockets 0.0" in metrics


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ({}, "unauthorized"),
        ({"headers": {"Authorization": "Basic YTpi"}}, "unauthorized"),
        ({"token": "not-a-jwt"}, "invalid_token"),
        ({"expired": True}, "token_expired"),
        ({"foreign": True}, "invalid_token"),
    ],
)
async def test_a_refused_token_closes_with_1008_and_says_why(gateway, tokens, how, reason):
    _, base = gateway
    token = how.get("token")
    if how.get("expired"):
        token = tokens.make("alice", expires_in=-5)
    if how.get("foreign"):
        token = tokens.make("alice", secret="another-secret-0123456789-abcdefghij")
    async with connect(events_url(base, token), additional_headers=how.get("headers")) as ws:
        code, text = await closed_with(ws)
    assert code == 1008 and text.startswith(f"{reason}: ")


async def test_the_socket_closes_when_the_token_expires(gateway, tokens):
    _, base = gateway
    started = time.monotonic()
    async with connect(events_url(base, tokens.make("alice", expires_in=2))) as ws:
        code, text = await closed_with(ws)
    assert (code, text.split(":")[0]) == (1008, "token_expired")
    assert time.monotonic() - started < 5


async def test_too_many_sockets_for_one_user(serve, tokens):
    async with serve(events_max_per_user=2) as (app, base):
        async with (
            connect(events_url(base, tokens.make("erin"))),
            connect(events_url(base, tokens.make("erin"))),
        ):
            await wait_until(lambda: _async(len(app.state.live.queues("erin")) == 2), timeout=10, what="two sockets")
            async with connect(events_url(base, tokens.make("erin"))) as third:
                assert (await closed_with(third))[0] == 1008
            async with connect(events_url(base, tokens.make("frank"))) as other_user:
                await wait_until(lambda: _async(app.state.live.queues("frank")), timeout=10, what="frank's socket")
                await other_user.ping()


async def test_a_slow_client_is_cut_off_and_nobody_else_notices(serve, publish, amqp, tokens):
    """The slow client never reads; its buffer fills, its queue is deleted, it is closed with 4001."""
    big = "x" * 60_000
    async with serve(events_buffer=8) as (app, base):
        async with (
            connect(events_url(base, tokens.make("slow")), max_queue=1, compression=None) as slow,
            connect(events_url(base, tokens.make("fast")), compression=None) as fast,
        ):
            [queue] = await wait_until(lambda: _async(app.state.live.queues("slow")), timeout=10, what="slow's queue")
            await wait_until(lambda: _async(app.state.live.queues("fast")), timeout=10, what="fast's queue")
            for n in range(400):  # ~24 MB: more than the socket buffers between them hold
                await publish(received("slow", n, big))
                if not app.state.live.queues("slow"):
                    break
                if n % 50 == 0:
                    mine = received("fast", n)
                    await publish(mine)
                    assert (await frame(fast))["id"] == mine.id, "the fast client was held up"
            await wait_until(lambda: _async(not app.state.live.queues("slow")), timeout=15, what="the slow stream ended")
            assert await queue_state(amqp, queue) == "gone"
            code, text = await closed_with(slow)
            assert code == 4001 and text.startswith("slow_consumer")
            last = received("fast", 999)
            await publish(last)
            assert (await frame(fast))["id"] == last.id


async def test_losing_the_broker_closes_with_1013_and_a_new_socket_works_after(serve, tokens, rabbitmq_url, publish):
    with TcpProxy.to_url(rabbitmq_url) as proxy:
        async with serve(rabbitmq_url=proxy.url_for(rabbitmq_url)) as (app, base):
            async with connect(events_url(base, tokens.make("gina"))) as ws:
                await wait_until(lambda: _async(app.state.live.queues("gina")), timeout=10, what="gina's queue")
                proxy.cut()
                code, text = await closed_with(ws)
            assert code == 1013 and text.startswith("broker_unavailable")
            await wait_until(lambda: _async(app.state.live.connected), timeout=15, what="the live connection back")
            async with connect(events_url(base, tokens.make("gina"))) as again:
                await wait_until(lambda: _async(app.state.live.queues("gina")), timeout=10, what="a new queue")
                env = received("gina", 1)
                await publish(env)
                assert (await frame(again))["id"] == env.id


async def test_a_live_event_already_sent_is_not_sent_again(gateway, publish, tokens):
    """Two persisters may publish one event twice (a redelivery): its `seq` is sent once."""
    app, base = gateway
    async with connect(events_url(base, tokens.make("hana"))) as ws:
        await wait_until(lambda: _async(app.state.live.queues("hana")), timeout=10, what="hana's queue")
        first = received("hana", 1)
        await publish(first, seq=7)
        await publish(first, seq=7)
        second = await publish(received("hana", 2), seq=8)
        assert (await frame(ws))["seq"] == 7
        assert await frame(ws) == second


async def test_a_socket_without_after_starts_at_the_head_whichever_event_comes_first(gateway, publish, stored, tokens):
    """Two persisters publish independently: the first live event may have overtaken an earlier one,
    which must still be sent, before it."""
    app, base = gateway
    await publish(received("iris", 1))  # before the socket: not sent
    async with connect(events_url(base, tokens.make("iris"))) as ws:
        second, third = received("iris", 2), received("iris", 3)
        stored["iris"].append({**second.wire(), "seq": 2})  # stored first, published last
        await publish(third, seq=3)
        await publish(second, seq=2)
        assert [(await frame(ws))["seq"] for _ in range(2)] == [2, 3]
        fourth = await publish(received("iris", 4), seq=4)
        assert await frame(ws) == fourth


async def test_a_bad_after_closes_with_1008(gateway, tokens):
    _, base = gateway
    for bad in ("-1", "x", "1.5", "9" * 30):
        async with connect(f"ws://{base}/api/v1/events?after={bad}&token={tokens.make('ivan')}") as ws:
            code, text = await closed_with(ws)
        assert code == 1008 and text.startswith("invalid_after: ")


async def _async(value):
    return value
