"""The dispatcher in-process against the real RabbitMQ and SecantusDB, a receiver on a real port,
and stored events published on `<p>.stream` as the persister publishes them (and answered to
`event.list` as the persister answers it)."""

import json
from typing import Any

import aio_pika
import pytest
from asgi_lifespan import LifespanManager

from fleet_devtools.testing.streams import event_page
from fleet_shared.broker import RpcClient
from fleet_shared.contracts import Contract, Reply, envelope
from fleet_shared.contracts.events import MessageReceived
from fleet_shared.routing import user_key
from waha_emulator.testing import WebhookReceiver
from webhook_dispatcher.app import create_app
from webhook_dispatcher.config import Settings


def dispatcher_settings(topology, rabbitmq_url: str, mongodb_url: str, database: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "dev", "rabbitmq_url": rabbitmq_url, "broker_prefix": topology.prefix,
        "orchestrator_partitions": topology.partitions, "mongodb_url": mongodb_url, "mongodb_database": database,
        "webhook_allow_private_targets": True, "webhook_backoff": "50ms", "webhook_max_backoff": "200ms",
        "webhook_timeout": "2s", "request_timeout": "2s",
    }
    return Settings(**{**values, **kw})


@pytest.fixture
def settings(topology, rabbitmq_url, mongodb_url, mongo_db) -> Settings:
    return dispatcher_settings(topology, rabbitmq_url, mongodb_url, mongo_db.name)


@pytest.fixture
async def stored(rabbitmq_url, topology):
    """The persister's side of `event.list` over the real broker: answers from the stored events the
    test put here (by user), as the persister would from MongoDB."""
    events: dict[str, list[dict]] = {}
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.persister_queries, ensure=False)

        async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                env = json.loads(message.body)
                reply = Reply.success(event_page(events.get(env["userId"], []), env["data"]["after"], env["data"]["limit"]))
                await channel.default_exchange.publish(
                    aio_pika.Message(reply.model_dump_json().encode(), correlation_id=message.correlation_id),
                    routing_key=message.reply_to or "",
                )

        await queue.consume(answer)
        yield events


@pytest.fixture
async def dispatcher(settings, stored):
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app


@pytest.fixture
async def receiver():
    async with WebhookReceiver() as r:
        yield r


@pytest.fixture
async def rpc(rabbitmq_url, topology):
    client = RpcClient(rabbitmq_url, topology, "dispatcher-test")
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
def ask(rpc, topology):
    async def ask(user: str, payload: Contract) -> Reply:
        return await rpc.request(topology.queries, envelope(payload, user), timeout=10)

    return ask


def message(user: str, n: int, body: str | None = None):
    data = MessageReceived(id=f"false_1@c.us_{user}_{n}", chat_id="1@c.us", from_me=False, body=body or f"#{n}",
                           timestamp=1_700_000_000 + n)
    return envelope(data, user)


@pytest.fixture
async def stream(rabbitmq_url, topology, stored):
    """Publish `(envelope, seq)` on `<p>.stream`, as the persister does once it stored the event."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.stream, ensure=False)

        async def publish(env, seq: int) -> dict:
            body = {**env.wire(), "seq": seq}
            if all(e["seq"] != seq for e in stored.get(env.user_id, [])):
                stored.setdefault(env.user_id, []).append(body)
            await exchange.publish(
                aio_pika.Message(json.dumps(body).encode(), message_id=env.id), routing_key=user_key(env.user_id, env.type)
            )
            return body

        yield publish
