"""The declared topology routes as documented, on the real broker."""

import json

import aio_pika
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import envelope
from fleet_shared.contracts.commands import GetQr, StartSession
from fleet_shared.contracts.events import MessageReceived, MessageSent, SessionActive
from fleet_shared.topology import USER_ID_HEADER, declare_topology_at

pytestmark = pytest.mark.integration


async def _drain(queue, into: list):
    while (msg := await queue.get(no_ack=True, fail=False)) is not None:
        into.append(msg)


async def test_declaring_twice_is_harmless(rabbitmq_url, topology):
    await declare_topology_at(rabbitmq_url, topology)


async def test_one_users_commands_all_land_in_one_partition(rabbitmq_url, topology):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        commands = await channel.get_exchange(topology.commands)
        users = [f"user{i}" for i in range(40)]
        for user in users:
            for payload in (StartSession(), GetQr()):
                env = envelope(payload, user)
                await commands.publish(
                    aio_pika.Message(json.dumps(env.wire()).encode(), headers={USER_ID_HEADER: user}),
                    routing_key=f"user.{user}.{env.type}",
                )
        seen: dict[str, set[int]] = {}
        received: list = []

        def collector(k):
            async def on_message(msg):
                async with msg.process():
                    seen.setdefault(json.loads(msg.body)["userId"], set()).add(k)
                    received.append(msg)
            return on_message

        for k, name in enumerate(topology.orchestrator_command_queues):
            await (await channel.get_queue(name)).consume(collector(k))

        async def all_arrived():
            return len(received) == 2 * len(users)

        await wait_until(all_arrived, timeout=10, what="every command in a partition")
        assert all(len(parts) == 1 for parts in seen.values()), "a user's commands were split across partitions"
        assert len({next(iter(p)) for p in seen.values()}) > 1, "all users hashed to one partition"


async def test_user_binding_sees_only_that_user(rabbitmq_url, topology):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        events = await channel.get_exchange(topology.events)
        mine = await channel.declare_queue(exclusive=True)
        await mine.bind(events, "user.alice.#")
        # Messages on one channel are routed in order: once "last" arrives, the others were routed too.
        for user, body in (("alice", b"first"), ("bob", b"bob"), ("alice2", b"alice2"), ("alice", b"last")):
            await events.publish(aio_pika.Message(body), routing_key=f"user.{user}.message.received")
        got: list = []

        async def last_arrived():
            await _drain(mine, got)
            return got and got[-1].body == b"last"

        await wait_until(last_arrived, timeout=5, what="alice's events")
        assert [m.body for m in got] == [b"first", b"last"]


async def test_declaring_on_an_upgraded_broker_removes_the_retired_bindings(rabbitmq_url, topology):
    """A broker an earlier version declared keeps its bindings; declaring this version's topology
    removes the ones it retired, so every message event stops going to the idle clock's queue."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        events = await channel.get_exchange(topology.events)
        activity = await channel.get_queue(topology.orchestrator_activity)
        for b in topology.retired_bindings():  # as the earlier version left them
            await activity.bind(events, routing_key=b.routing_key)

        await declare_topology_at(rabbitmq_url, topology)

        for payload in (
            MessageReceived(id="m1", chat_id="1@c.us", from_me=False, timestamp=1),
            MessageSent(id="m2", chat_id="1@c.us", from_me=True, timestamp=2),
            SessionActive(message_id="m2"),
        ):
            body = json.dumps(envelope(payload, "alice").wire()).encode()
            await events.publish(aio_pika.Message(body), routing_key=f"user.alice.{payload.TYPE}")
        got = await wait_until(lambda: activity.get(no_ack=True, fail=False), 5, what="the report on the activity queue")
        assert got.routing_key == "user.alice.session.active"
        # Published before the report on one channel: had they been routed here, they would have come first.
        assert await activity.get(no_ack=True, fail=False) is None
