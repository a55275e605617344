"""Fixtures of the gateway tests: tokens, the app in-process, a responder on the real topology."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager

from fleet_devtools.localdev import free_port, wait_until
from fleet_devtools.testing.streams import event_page
from fleet_shared.contracts import Reply
from fleet_shared.contracts.stream import ListEvents
from gateway.app import create_app
from gateway.config import Settings

SECRET = "test-secret-0123456789-abcdefghijklmnop"  # >= 32 bytes, as HS256 wants


def make_token(
    sub: str | None = "alice",
    *,
    secret: str = SECRET,
    expires_in: float | None = 300,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    payload: dict[str, Any] = dict(claims)
    if sub is not None:
        payload["sub"] = sub
    if expires_in is not None:
        payload["exp"] = int(time.time() + expires_in)
    return jwt.encode(payload, secret, algorithm=algorithm)


def auth(sub: str = "alice", **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub, **kwargs)}"}


def gateway_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"environment": "dev", "jwt_secret": SECRET, "request_timeout": 1.0}
    values.update(overrides)
    return Settings(**values)


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


@asynccontextmanager
async def running_gateway(settings: Settings, *, wait_ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (lifespan run), with an httpx client; by default once it reached RabbitMQ."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            client.app_state = app.state  # type: ignore[attr-defined]  # for tests that look inside
            if wait_ready:
                await wait_until(lambda: _ready(client), timeout=15, what="gateway connected to RabbitMQ")
            yield client


@pytest.fixture
async def offline_gateway() -> AsyncIterator[httpx.AsyncClient]:
    """The gateway pointed at a port where no broker listens: it starts anyway and answers 503."""
    settings = gateway_settings(rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    async with running_gateway(settings, wait_ready=False) as client:
        yield client


@pytest.fixture
def gateway_factory(topology, rabbitmq_url):
    """`async with gateway_factory(**settings) as client`: a gateway on the test's topology."""

    def factory(*, wait_ready: bool = True, **overrides: Any):
        values: dict[str, Any] = {
            "rabbitmq_url": rabbitmq_url,
            "broker_prefix": topology.prefix,
            "orchestrator_partitions": topology.partitions,
        }
        values.update(overrides)
        return running_gateway(gateway_settings(**values), wait_ready=wait_ready)

    return factory


@pytest.fixture
async def gateway(gateway_factory) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_factory() as client:
        yield client


@dataclass
class Seen:
    queue: str
    routing_key: str
    headers: dict
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    envelope: dict


Handler = Callable[[dict], Awaitable[Reply | None]]


@dataclass
class Responder:
    """Stands in for the orchestrator and the persister: answers `Reply` JSON to reply_to.

    `handlers` maps an envelope type to a coroutine returning the Reply (None = stay silent).
    """

    url: str
    queues: list[str]
    handlers: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def start(self) -> None:
        self._connection = await aio_pika.connect(self.url)
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=500)
        for name in self.queues:
            queue = await self._channel.get_queue(name, ensure=False)
            await queue.consume(self._consumer(name), no_ack=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._connection.close()

    def of_type(self, message_type: str) -> list[Seen]:
        return [s for s in self.seen if s.envelope.get("type") == message_type]

    def _consumer(self, queue: str):
        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            env = json.loads(message.body)
            self.seen.append(
                Seen(queue, message.routing_key or "", dict(message.headers), message.message_id,
                     message.correlation_id, message.reply_to, env)
            )
            # Answer in a task of its own: a handler that waits must not hold up the next delivery.
            task = asyncio.create_task(self._answer(message, env))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return on_message

    async def _answer(self, message: aio_pika.abc.AbstractIncomingMessage, env: dict) -> None:
        handler = self.handlers.get(env["type"])
        if handler is None or message.reply_to is None:
            return
        reply = await handler(env)
        if reply is None:
            return
        await self._channel.default_exchange.publish(
            aio_pika.Message(reply.model_dump_json().encode(), correlation_id=message.correlation_id,
                             content_type="application/json"),
            routing_key=message.reply_to,
        )


@pytest.fixture
async def responder(topology, rabbitmq_url) -> AsyncIterator[Responder]:
    queues = [topology.orchestrator_queries, topology.persister_queries, *topology.orchestrator_command_queues]
    r = Responder(rabbitmq_url, queues)
    await r.start()
    yield r
    await r.stop()


class Tokens:
    secret = SECRET
    make = staticmethod(make_token)
    auth = staticmethod(auth)


@pytest.fixture
def tokens() -> type[Tokens]:
    return Tokens


@pytest.fixture
def stored() -> dict[str, list[dict]]:
    """Each user's stored events (envelope + `seq`), as the persister keeps them."""
    return {}


@pytest.fixture
async def persister(responder, stored) -> dict[str, list[dict]]:
    """The persister's answers to `event.list` (a socket's head, catch-up and holes), from `stored`."""

    async def list_events(env: dict) -> Reply:
        return Reply.success(event_page(stored.get(env["userId"], []), env["data"]["after"], env["data"]["limit"]))

    responder.handlers[ListEvents.TYPE] = list_events
    return stored
