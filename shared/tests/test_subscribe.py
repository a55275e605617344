"""`fleet_shared.subscribe` on the real broker: typed envelopes, one user or all, durable or temporary."""

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import aio_pika
import pytest
from aio_pika.exceptions import ChannelNotFoundEntity
from aiormq.exceptions import ChannelLockedResource

from fleet_devtools.localdev import wait_until
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
from fleet_shared.subscribe import SubscriptionLost, subscribe

pytestmark = pytest.mark.integration


def received(user: str, n: int) -> Envelope:
    return envelope(
        MessageReceived(id=f"false_1@c.us_{user}{n}", chat_id="1@c.us", from_me=False, from_="1@c.us", body=f"#{n}", timestamp=1_700_000_000 + n),
        user,
    )


def ack(user: str, n: int) -> Envelope:
    return envelope(MessageAck(id=f"false_1@c.us_{user}{n}", chat_id="1@c.us", ack=3), user)


@pytest.fixture
async def connection(rabbitmq_url):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield connection


@pytest.fixture
async def channel(connection):
    return await connection.channel(publisher_confirms=True)


@pytest.fixture
def publish(channel, topology):
    async def publish(env: Envelope, *, body: bytes | None = None, routing_key: str | None = None) -> None:
        exchange = await channel.get_exchange(topology.events)
        await exchange.publish(
            aio_pika.Message(body or json.dumps(env.wire()).encode(), message_id=env.id),
            routing_key=routing_key or user_key(env.user_id, env.type),
        )

    return publish


class Inbox:
    def __init__(self) -> None:
        self.items: list[Envelope] = []

    async def __call__(self, env: Envelope) -> None:
        self.items.append(env)

    def ids(self) -> list[str]:
        return [e.id for e in self.items]


async def queue_exists(connection, name: str) -> bool:
    """Asked on a channel of its own: a failed passive declare closes the channel."""
    probe = await connection.channel()
    try:
        await probe.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return False
    except ChannelLockedResource:  # RESOURCE_LOCKED: exclusive to another connection, so it exists
        return True
    await probe.close()
    return True


async def test_one_users_events_arrive_typed_and_in_order(rabbitmq_url, topology, publish, channel, connection):
    inbox = Inbox()
    async with subscribe(rabbitmq_url, topology, inbox, events=[MessageReceived, MessageAck], user_id="alice") as sub:
        assert sorted(sub.binding_keys) == ["user.alice.message.ack", "user.alice.message.received"]
        sent = []
        for n in range(20):
            for env in (received("alice", n), received("bob", n), ack("alice", n)):
                await publish(env)
                if env.user_id == "alice":
                    sent.append(env.id)
        await publish(envelope(SessionQrUpdated(value="2@x"), "alice"))  # not subscribed: never bound
        await wait_until(lambda: _async(len(inbox.items) >= len(sent)), timeout=10, what="alice's events")
        assert inbox.ids() == sent
        first = inbox.items[0]
        assert isinstance(first.data, MessageReceived) and first.data.body == "#0" and first.user_id == "alice"
        assert isinstance(inbox.items[1].data, MessageAck) and inbox.items[1].data.ack == 3
        name = sub.queue_name
        assert name.startswith("amq.gen-")
        assert await queue_exists(connection, name)
    assert not await queue_exists(connection, name), "a temporary subscription's queue outlived it"


async def test_all_users_one_type(rabbitmq_url, topology, publish):
    inbox = Inbox()
    async with subscribe(rabbitmq_url, topology, inbox, events=[MessageAck]) as sub:
        assert sub.binding_keys == ["user.*.message.ack"]
        await publish(received("alice", 1))
        await publish(ack("alice", 1))
        await publish(ack("bob", 1))
        await wait_until(lambda: _async(len(inbox.items) == 2), timeout=10, what="both users' acks")
        assert {e.user_id for e in inbox.items} == {"alice", "bob"}
        assert all(e.type == "message.ack" for e in inbox.items)


async def test_caught_up_returns_once_every_event_published_before_it_was_handled(rabbitmq_url, topology, publish):
    inbox = Inbox()

    async def slow(env: Envelope) -> None:
        await asyncio.sleep(0.005)  # the handler is behind the broker
        await inbox(env)

    async with subscribe(rabbitmq_url, topology, slow, events=[MessageAck], prefetch=50) as sub:
        for round_ in range(5):
            sent = [ack("alice", round_ * 100 + n) for n in range(30)]
            for env in sent:
                await publish(env)  # confirmed: in the queue
            markers_before = sub._fence_count
            await asyncio.gather(*(sub.caught_up() for _ in range(40)))  # forty readers at once
            assert {e.id for e in sent} <= set(inbox.ids())
            assert sub._fence_count - markers_before <= 2  # they shared the markers
        assert len(inbox.items) == 150  # the markers never reached the handler


async def test_caught_up_fails_once_the_subscription_is_closed(rabbitmq_url, topology):
    sub = await subscribe(rabbitmq_url, topology, Inbox(), events=[MessageAck]).start()
    await sub.caught_up()
    await sub.close()
    with pytest.raises(SubscriptionLost):
        await asyncio.wait_for(sub.caught_up(), 5)


async def test_durable_queue_keeps_events_while_the_service_is_away(rabbitmq_url, topology, publish, channel, connection):
    name = f"svc{uuid.uuid4().hex[:8]}"
    queue = topology.subscriber_queue(name)
    try:
        first = Inbox()
        async with subscribe(rabbitmq_url, topology, first, events=[MessageReceived], queue=name) as sub:
            assert sub.queue_name == queue
            await publish(received("alice", 1))
            await wait_until(lambda: _async(first.items), timeout=10, what="the first event")
        # Away: these wait in the durable queue.
        missed = [received("alice", 2), received("carol", 3)]
        for env in missed:
            await publish(env)
        second = Inbox()
        async with subscribe(rabbitmq_url, topology, second, events=[MessageReceived], queue=name):
            await wait_until(lambda: _async(len(second.items) == 2), timeout=10, what="the events sent while away")
        assert second.ids() == [e.id for e in missed]
        assert await queue_exists(connection, queue)
    finally:
        await channel.queue_delete(queue)
        await channel.queue_delete(topology.dead_letter_queue(queue))


async def test_failing_handler_and_bad_bodies_end_in_the_dead_letter_queue(rabbitmq_url, topology, publish, channel, connection):
    name = f"svc{uuid.uuid4().hex[:8]}"
    queue = topology.subscriber_queue(name)
    dlq_name = topology.dead_letter_queue(queue)
    calls: list[str] = []

    async def fails_on_poison(env: Envelope) -> None:
        calls.append(env.data.body)
        if env.data.body == "#13":
            raise RuntimeError("poison")

    try:
        async with subscribe(rabbitmq_url, topology, fails_on_poison, events=[MessageReceived], queue=name):
            poison = received("alice", 13)
            await publish(poison)
            await publish(received("alice", 1), body=b"{not json")
            forged = received("bob", 2)
            await publish(forged, routing_key=user_key("alice", forged.type))  # bob's event on alice's key
            await publish(received("alice", 4))
            dlq = await channel.declare_queue(dlq_name, passive=True)
            dead: list = []

            async def dead_lettered() -> bool:
                await _drain(dlq, dead)
                return len(dead) >= 3

            await wait_until(dead_lettered, timeout=20, what="poison, malformed and forged events dead-lettered")
            await wait_until(lambda: _async("#4" in calls), timeout=10, what="the event after the poison one")
        assert calls.count("#13") >= 2, "a failing event is retried before it is dead-lettered"
        bodies = sorted(m.body for m in dead)
        assert b"{not json" in bodies
        assert sorted(json.loads(b)["id"] for b in bodies if b != b"{not json") == sorted(
            [forged.id, poison.id]
        )
    finally:
        await channel.queue_delete(queue)
        await channel.queue_delete(dlq_name)


async def test_a_temporary_subscription_ends_loudly_when_its_connection_is_lost(rabbitmq_url, topology, connection):
    own = await aio_pika.connect(rabbitmq_url)
    sub = await subscribe(own, topology, Inbox(), events=[SessionStatusReported]).start()
    name = sub.queue_name
    await own.close()
    with pytest.raises(SubscriptionLost):
        await asyncio.wait_for(sub.wait(), 5)
    await sub.close()
    assert not await queue_exists(connection, name)


async def test_through_a_network_cut_temporary_ends_and_durable_carries_on(
    rabbitmq_url, topology, publish, channel, connection
):
    name = f"svc{uuid.uuid4().hex[:8]}"
    with TcpProxy.to_url(rabbitmq_url) as proxy:
        robust = await aio_pika.connect_robust(proxy.url_for(rabbitmq_url), reconnect_interval=0.2)
        durable_inbox = Inbox()
        try:
            temporary = await subscribe(robust, topology, Inbox(), events=[MessageReceived], user_id="alice").start()
            durable = await subscribe(robust, topology, durable_inbox, events=[MessageReceived], queue=name).start()
            proxy.cut()
            with pytest.raises(SubscriptionLost):
                await asyncio.wait_for(temporary.wait(), 10)
            await asyncio.wait_for(temporary.close(), 5)  # promptly, broker or not
            # The broker drops the exclusive queue with the dead connection (a publish racing that gets a nack).
            await wait_until(lambda: _not_exists(connection, temporary.queue_name), timeout=10, what="the queue gone")
            during = received("alice", 1)
            await publish(during)
            await wait_until(lambda: _async(robust.connected.is_set()), timeout=10, what="the robust reconnect")
            after = received("alice", 2)
            await publish(after)
            await wait_until(lambda: _async(len(durable_inbox.items) >= 2), timeout=10, what="durable events after the cut")
            assert set(durable_inbox.ids()) == {during.id, after.id}
            again = Inbox()
            async with subscribe(robust, topology, again, events=[MessageReceived], user_id="alice"):
                late = received("alice", 3)
                await publish(late)
                await wait_until(lambda: _async(again.items), timeout=10, what="a new temporary subscription")
            await durable.close()
        finally:
            await robust.close()
            await channel.queue_delete(topology.subscriber_queue(name))
            await channel.queue_delete(topology.dead_letter_queue(topology.subscriber_queue(name)))


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "event_consumer.py"


async def run_example(rabbitmq_url: str, topology, *args: str) -> asyncio.subprocess.Process:
    """`examples/event_consumer.py` as its README runs it, once it says it is listening."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), *args,
        env={**os.environ, "RABBITMQ_URL": rabbitmq_url, "BROKER_PREFIX": topology.prefix},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(process.stderr.readline(), 30)
    assert line.startswith(b"listening on "), line
    return process


async def test_the_example_consumer_follows_one_user(rabbitmq_url, topology, publish):
    process = await run_example(rabbitmq_url, topology, "--user", "alice", "--count", "3")
    await publish(received("alice", 1))
    await publish(received("bob", 1))
    await publish(envelope(SessionStatusReported(status="WORKING", reported_at_ms=1, waha_event_id="e1"), "alice"))
    await publish(ack("alice", 1))
    await publish(envelope(SessionStatusChanged(status="WORKING", previous_status="SCAN_QR_CODE"), "alice"))
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 3 and all(" alice " in line for line in lines), lines
    assert lines[0].endswith("alice message.received <- 1@c.us: '#1'")
    assert lines[1].endswith("alice message.ack false_1@c.us_alice1 is now 3")
    assert lines[2].endswith("alice session.status_changed session SCAN_QR_CODE -> WORKING")


async def test_the_example_consumer_follows_every_user_until_stopped(rabbitmq_url, topology, publish):
    process = await run_example(rabbitmq_url, topology, "--type", "message.received")
    await publish(ack("alice", 1))
    for user in ("alice", "bob"):
        await publish(received(user, 7))
    lines: list[str] = []
    async with asyncio.timeout(30):
        while len(lines) < 2:
            lines.append((await process.stdout.readline()).decode())
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert out == b""
    assert [line.split()[1:3] for line in lines] == [["alice", "message.received"], ["bob", "message.received"]]


def test_only_event_contracts_can_be_subscribed(topology):
    from fleet_shared.contracts.commands import StartSession

    with pytest.raises(ValueError):
        subscribe("amqp://unused", topology, Inbox(), events=[StartSession])
    with pytest.raises(ValueError):
        subscribe("amqp://unused", topology, Inbox(), events=[])
    with pytest.raises(ValueError):
        subscribe("amqp://unused", topology, Inbox(), user_id="not.valid")
    with pytest.raises(ValueError):
        subscribe("amqp://unused", topology, Inbox(), queue="Not A Name")


async def _drain(queue, into: list) -> None:
    while (msg := await queue.get(no_ack=True, fail=False)) is not None:
        into.append(msg)


async def _async(value):
    return value


async def _not_exists(connection, name: str) -> bool:
    return not await queue_exists(connection, name)
