"""The gateway's request/reply client (`fleet_shared.broker.RpcClient`) on the real broker."""

import asyncio
import json

import aio_pika
import pytest

from fleet_shared.broker import REPLY_TO, BrokerTimeout, BrokerUnavailable, RpcClient
from fleet_shared.contracts import envelope, new_id
from fleet_shared.contracts.commands import GetSession
from fleet_shared.ids import session_name_for


@pytest.fixture
async def rpc(topology, rabbitmq_url):
    client = RpcClient(rabbitmq_url, topology, "test-gateway")
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def queries(topology, rabbitmq_url):
    """The orchestrator's query queue, read directly: what the request looks like on the wire."""
    connection = await aio_pika.connect(rabbitmq_url)
    channel = await connection.channel()
    yield channel, await channel.get_queue(topology.orchestrator_queries, ensure=False)
    await connection.close()


def get_session(user: str = "alice"):
    return envelope(GetSession(), user, session=session_name_for(user), correlation_id=new_id())


async def next_message(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    async with queue.iterator() as messages:
        async for message in messages:
            return message
    raise AssertionError("no message")


async def test_the_request_on_the_wire_and_its_reply(rpc, queries, topology):
    channel, queue = queries
    env = get_session()
    pending = asyncio.create_task(rpc.request(topology.queries, env, 7.5))
    message = await next_message(queue)
    assert message.routing_key == "user.alice.session.get"
    assert json.loads(message.body) == env.wire()
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.message_id == env.id and message.correlation_id == env.correlation_id
    assert message.type == "session.get"
    assert message.headers == {"x-user-id": "alice", "x-schema-version": 1}
    assert message.expiration == 7.5  # the request's own timeout: nobody waits for it afterwards
    assert message.reply_to and message.reply_to.startswith(REPLY_TO)
    await channel.default_exchange.publish(
        aio_pika.Message(b'{"ok": true, "data": {"status": "WORKING"}}', correlation_id=message.correlation_id),
        routing_key=message.reply_to,
    )
    reply = await pending
    assert reply.ok and reply.data == {"status": "WORKING"}
    await message.ack()


async def test_a_reply_that_is_not_a_reply_is_broker_unavailable(rpc, queries, topology):
    channel, queue = queries
    pending = asyncio.create_task(rpc.request(topology.queries, get_session(), 5))
    message = await next_message(queue)
    await channel.default_exchange.publish(
        aio_pika.Message(b"<html>not json</html>", correlation_id=message.correlation_id), routing_key=message.reply_to
    )
    with pytest.raises(BrokerUnavailable, match="malformed reply"):
        await pending
    await message.ack()


async def test_a_request_no_queue_takes_is_broker_unavailable_at_once(rpc, topology):
    # Mandatory publish with nothing bound to the key: the broker returns it, no waiting for the timeout.
    with pytest.raises(BrokerUnavailable, match="nobody can take"):
        await rpc.request(topology.queries, get_session(), 30, routing_key="nothing.binds.this")
    assert not rpc._pending


async def test_no_reply_is_a_timeout(rpc, queries, topology):
    with pytest.raises(BrokerTimeout):
        await rpc.request(topology.queries, get_session(), 0.3)
    assert not rpc._pending


async def test_closed_client_is_broker_unavailable(topology, rabbitmq_url):
    client = RpcClient(rabbitmq_url, topology, "test-gateway")
    with pytest.raises(BrokerUnavailable):
        await client.request(topology.queries, get_session(), 1)
    await client.connect()
    await client.close()
    with pytest.raises(BrokerUnavailable):
        await client.request(topology.queries, get_session(), 1)
