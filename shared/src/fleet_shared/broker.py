"""Connecting to RabbitMQ with the project's reliability defaults, publishing, and request/reply.

Defaults: publisher confirms on, returned (unroutable) mandatory messages raise, persistent
messages, prefetch set, `message_id` = the envelope's deterministic id, `x-user-id` header (the
orchestrator's consistent-hash partitioning reads it).
"""

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, DeliveryError
from faststream.rabbit import Channel, RabbitBroker, RabbitResponse
from pamqp.commands import Basic

from .contracts import Envelope, Reply
from .routing import user_key
from .settings import FleetSettings
from .topology import USER_ID_HEADER, Topology

log = logging.getLogger(__name__)

REPLY_TO = "amq.rabbitmq.reply-to"
CONFIRM_TIMEOUT = 10.0


class BrokerUnavailable(Exception):
    """The broker could not take the message (down, nacked, or nobody can receive it)."""


class BrokerTimeout(Exception):
    """Nobody answered a request in time."""


def make_broker(settings: FleetSettings, service: str, *, prefetch: int = 32) -> RabbitBroker:
    return RabbitBroker(
        settings.rabbitmq_url,
        app_id=service,
        default_channel=Channel(prefetch_count=prefetch, on_return_raises=True),
        graceful_timeout=15.0,
        reconnect_interval=1.0,
        log_level=logging.DEBUG,
        client_properties={"connection_name": service},
    )


def amqp_properties(env: Envelope) -> dict[str, Any]:
    return {
        "message_id": env.id,
        "correlation_id": env.correlation_id,
        "headers": {USER_ID_HEADER: env.user_id, "x-schema-version": env.version},
        "message_type": env.type,
        "persist": True,
    }


async def publish_envelope(
    broker: RabbitBroker, exchange: str, env: Envelope, *, mandatory: bool = False
) -> None:
    """Publish and wait for the broker's confirm; raise `BrokerUnavailable` when it did not take it."""
    try:
        await broker.publish(
            env.wire(),
            exchange=exchange,
            routing_key=user_key(env.user_id, env.type),
            mandatory=mandatory,
            timeout=CONFIRM_TIMEOUT,
            **amqp_properties(env),
        )
    # aiormq raises ChannelInvalidStateError (a RuntimeError) while the connection is down.
    except (AMQPError, DeliveryError, ConnectionError, TimeoutError, RuntimeError) as exc:
        raise BrokerUnavailable(f"broker did not confirm {env.type}: {exc!r}") from exc


def answer(reply: Reply) -> RabbitResponse:
    """What a FastStream handler returns to answer a command or query through direct reply-to.

    Not `mandatory`: RabbitMQ 3.10 answers a mandatory publish to a direct reply-to address with
    basic.return even though it delivered it, and the channel's on_return_raises would turn every
    answered request into a failed (rejected, dead-lettered) one.
    """
    return RabbitResponse(reply.model_dump(mode="json"), mandatory=False, content_type="application/json")


class RpcClient:
    """Request/reply over RabbitMQ's direct reply-to, many requests in flight at once.

    FastStream's `broker.request` holds one lock for a whole round trip, so a gateway using it
    would answer one client at a time; this keeps a future per correlation id instead.
    """

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        self._url = url
        self._topology = topology
        self._name = name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}

    async def connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": f"{self._name}-rpc"}, reconnect_interval=1.0
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            # Declared (passively) rather than merely named, so the robust channel re-consumes it after a reconnect.
            reply_queue = await channel.declare_queue(REPLY_TO, passive=True)
            await reply_queue.consume(self._on_reply, no_ack=True)
        except BaseException:
            await connection.close()
            raise
        # Only now `connected`: until the reply consumer exists, a request could not be answered.
        self._connection, self._channel = connection, channel

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed and self._connection.connected.is_set()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return
        try:
            future.set_result(Reply.model_validate(json.loads(message.body)))
        except ValueError as exc:
            future.set_exception(BrokerUnavailable(f"malformed reply: {exc}"))

    async def request(
        self, exchange: str, env: Envelope, timeout: timedelta | float, *, routing_key: str | None = None
    ) -> Reply:
        """Publish `env` (to `user.<its user>.<its type>`, or to `routing_key` when given) and wait for the reply."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if not self.connected or self._channel is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        correlation_id = env.correlation_id or env.id
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            target = await self._channel.get_exchange(exchange, ensure=False)
            props = amqp_properties(env)
            message = aio_pika.Message(
                json.dumps(env.wire()).encode(),
                content_type="application/json",
                message_id=props["message_id"],
                correlation_id=correlation_id,
                headers=props["headers"],
                type=props["message_type"],
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                reply_to=REPLY_TO,
                expiration=seconds,
            )
            confirm = await target.publish(
                message,
                routing_key=routing_key or user_key(env.user_id, env.type),
                mandatory=True,
                timeout=CONFIRM_TIMEOUT,
            )
            if not isinstance(confirm, Basic.Ack):
                raise BrokerUnavailable(f"broker refused {env.type}")
            return await asyncio.wait_for(future, seconds)
        except DeliveryError as exc:
            raise BrokerUnavailable(f"nobody can take {env.type} now") from exc
        except TimeoutError as exc:
            raise BrokerTimeout(f"no answer to {env.type} within {seconds:.0f}s") from exc
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(f"broker error: {exc!r}") from exc
        finally:
            self._pending.pop(correlation_id, None)
