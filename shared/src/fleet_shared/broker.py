"""Connecting to RabbitMQ with the project's reliability defaults, publishing, and request/reply.

Defaults: publisher confirms on, returned (unroutable) mandatory messages raise, persistent
messages, prefetch set, `message_id` = the envelope's deterministic id, `x-user-id` header (the
orchestrator's consistent-hash partitioning reads it).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, DeliveryError
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitResponse
from faststream.rabbit.message import RabbitMessage
from pamqp.commands import Basic

from .contracts import Envelope, Reply
from .routing import user_key
from .settings import FleetSettings
from .topology import USER_ID_HEADER, Queue, Topology

log = logging.getLogger(__name__)

REPLY_TO = "amq.rabbitmq.reply-to"
PERSISTENT = 2  # AMQP delivery mode
CONFIRM_TIMEOUT = 10.0


class BrokerUnavailable(Exception):
    """The broker could not take the message (down, nacked, or nobody can receive it)."""


class BrokerTimeout(Exception):
    """Nobody answered a request in time."""


# Half of RabbitMQ 4's default max_message_size (16 MiB); 3.10 allows 128 MiB.
DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024


def make_broker(settings: FleetSettings, service: str, *, prefetch: int = 32) -> RabbitBroker:
    return RabbitBroker(
        settings.rabbitmq_url,
        app_id=service,
        default_channel=Channel(prefetch_count=prefetch, on_return_raises=True),
        graceful_timeout=15.0,
        reconnect_interval=1.0,
        log_level=logging.DEBUG,
        # Not one of FastStream's client properties: it only lands in the URL's query, where aiormq
        # ignores it, so this connection is unnamed (kept as it was; naming it is a separate change).
        client_properties={"connection_name": service},  # type: ignore[arg-type]
    )


async def whole_delivery(message: RabbitMessage) -> RabbitMessage:
    """A FastStream decoder whose decoded "body" is the delivery itself (`consume` uses it).

    Why not a `body: bytes, message: RabbitMessage` handler: FastStream resolves a context
    parameter such as `RabbitMessage` with a synchronous function that fast_depends runs in a
    worker thread, for every delivery. That thread hop cost ~400 µs of CPU per message (py-spy:
    `CallModel.asolve` -> `run_in_threadpool`) and halved how many deliveries a service could take
    (docs/benchmarks.md). The body is left untouched, so parsing is the handler's own
    (`fleet_shared.inbound`) and a bad body cannot fail before it.
    """
    return message


Consumer = Callable[[RabbitMessage], Awaitable[RabbitResponse | None]]


def consume(
    broker: RabbitBroker, queue: Queue, handler: Consumer, *, ack_policy: AckPolicy = AckPolicy.REJECT_ON_ERROR,
    no_reply: bool = False, prefetch: int | None = None,
) -> None:
    """Subscribe `handler` to one of the topology's queues (declared by `declare_topology`). It gets
    the whole delivery (`whole_delivery`); a handler that returns a `RabbitResponse` answers a request.
    `prefetch`: this subscriber's own (on a channel of its own), instead of the broker's default."""
    broker.subscriber(
        queue.rabbit(), decoder=whole_delivery, ack_policy=ack_policy, no_reply=no_reply, title=queue.name,
        description=queue.description or None,
        channel=Channel(prefetch_count=prefetch, on_return_raises=True) if prefetch else None,
    )(handler)


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


def json_properties(app_id: str | None, **properties: Any) -> Basic.Properties:
    """AMQP properties of a persistent JSON message, stamped as FastStream stamps what it publishes
    (`app_id` = the service, `timestamp` = now), for publishing on aiormq's channel directly."""
    return Basic.Properties(
        content_type="application/json", delivery_mode=PERSISTENT, app_id=app_id, timestamp=datetime.now(UTC), **properties
    )


def envelope_properties(env: Envelope, *, app_id: str | None = None, **overrides: Any) -> Basic.Properties:
    """The AMQP properties `publish_envelope` sends with `env` (`amqp_properties`, as aiormq takes
    them); `overrides`: more or other properties (a request's `reply_to`, say)."""
    props = amqp_properties(env)
    fields = {
        "message_id": props["message_id"],
        "correlation_id": props["correlation_id"],
        "headers": props["headers"],
        "message_type": props["message_type"],
        **overrides,
    }
    return json_properties(app_id, **fields)


def envelope_body(env: Envelope) -> bytes:
    """`env` on the wire: compact UTF-8 JSON, byte for byte what `publish_envelope` sends."""
    return env.model_dump_json(by_alias=True).encode()


class ConfirmedPublisher:
    """Publishing without FastStream: one robust aio-pika connection, one channel with publisher confirms.

    For a process whose hot path is a confirmed publish (webhook-ingest): FastStream's
    `broker.publish` layers and aio-pika's `Message` and `Exchange` wrappers added ~70 % to the CPU
    of aiormq's publish there, so this publishes on aiormq's channel directly, with the same wire
    result as `publish_envelope` (`app_id` = `name`). Returned (unroutable) mandatory messages, nacks, a
    confirm timeout and a lost connection all raise `BrokerUnavailable`; while the connection is
    down it raises at once, and aio-pika's robust connection restores the channel by itself.
    """

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self.name = name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None

    async def connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": self.name}, reconnect_interval=1.0
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await self._prepare(channel)
        except BaseException:
            await connection.close()
            raise
        # Only now `connected`: `_prepare` may set up what publishing needs (a reply consumer).
        self._connection, self._channel = connection, channel

    async def _prepare(self, channel: AbstractRobustChannel) -> None:
        """Set up on the new channel what must exist before the first publish (subclasses)."""

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed and self._connection.connected.is_set()

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Basic.Properties, *, mandatory: bool = False
    ) -> None:
        """Publish and wait for the broker's confirm; raise `BrokerUnavailable` when it did not take it."""
        what = properties.message_type or "the message"
        channel = self._channel
        # No await between this check and `get_underlay_channel`, which would otherwise wait for a reconnect.
        if channel is None or not self.connected or channel.is_closed:
            raise BrokerUnavailable(f"not connected to RabbitMQ, {what} not published")
        try:
            # `wait` is in aiormq's Channel.basic_publish, not in the AbstractChannel it is typed as.
            confirm = await (await channel.get_underlay_channel()).basic_publish(  # type: ignore[call-arg]
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=mandatory,
                timeout=CONFIRM_TIMEOUT,
                # Do not wait for aiormq's writer to flush the frame: the confirm follows it anyway.
                wait=False,
            )
        except DeliveryError as exc:  # returned: no queue is bound to take it
            raise BrokerUnavailable(f"nobody can take {what} now: {exc!r}") from exc
        # aiormq raises ChannelInvalidStateError (a RuntimeError) while the connection is down.
        except (AMQPError, ConnectionError, TimeoutError, RuntimeError) as exc:
            raise BrokerUnavailable(f"broker did not confirm {what}: {exc!r}") from exc
        if not isinstance(confirm, Basic.Ack):
            raise BrokerUnavailable(f"broker did not confirm {what}: {confirm!r}")

    async def publish_envelope(self, exchange: str, env: Envelope, *, mandatory: bool = False) -> None:
        """`publish_envelope` (same routing key, body and properties) on this publisher."""
        await self.publish(
            exchange, user_key(env.user_id, env.type), envelope_body(env), envelope_properties(env, app_id=self.name),
            mandatory=mandatory,
        )


def answer(reply: Reply, max_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> RabbitResponse:
    """What a FastStream handler returns to answer a command or query through direct reply-to.

    A reply larger than `max_bytes` (BROKER_MAX_REPLY_BYTES) is answered as a 500 instead: RabbitMQ
    would refuse it (max_message_size) and close the channel, and the asker would wait in vain.
    Not `mandatory`: RabbitMQ 3.10 answers a mandatory publish to a direct reply-to address with
    basic.return even though it delivered it, and the channel's on_return_raises would turn every
    answered request into a failed (rejected, dead-lettered) one.
    """
    body = reply.model_dump_json().encode()
    if len(body) > max_bytes:
        log.error("a reply of %d bytes is over BROKER_MAX_REPLY_BYTES (%d): answered as reply_too_large", len(body), max_bytes)
        body = Reply.failure("reply_too_large", "the answer is too large to send; ask for less", 500).model_dump_json().encode()
    return RabbitResponse(body, mandatory=False, content_type="application/json")


class RpcClient(ConfirmedPublisher):
    """Request/reply over RabbitMQ's direct reply-to, many requests in flight at once.

    FastStream's `broker.request` holds one lock for a whole round trip, so a gateway using it
    would answer one client at a time; this keeps a future per correlation id instead.
    """

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        super().__init__(url, f"{name}-rpc")
        self._topology = topology
        self._pending: dict[str, asyncio.Future[Reply]] = {}

    async def _prepare(self, channel: AbstractRobustChannel) -> None:
        # Declared (passively) rather than merely named, so the robust channel re-consumes it after a reconnect.
        reply_queue = await channel.declare_queue(REPLY_TO, passive=True)
        await reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return
        try:
            future.set_result(Reply.model_validate_json(message.body))
        except ValueError as exc:  # pydantic's ValidationError (bad JSON included) is a ValueError
            future.set_exception(BrokerUnavailable(f"malformed reply: {exc}"))

    async def request(
        self, exchange: str, env: Envelope, timeout: timedelta | float, *, routing_key: str | None = None,
        expires: bool = True,
    ) -> Reply:
        """Publish `env` (to `user.<its user>.<its type>`, or to `routing_key` when given) and wait
        for the reply. `BrokerUnavailable` when the broker did not take it or nobody can receive it
        (unroutable), `BrokerTimeout` when no reply came within `timeout`.

        `expires`: the request expires with the timeout (RabbitMQ drops it unread). Not for commands:
        their queues dead-letter what expires, so the orchestrator drops a late command itself."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        correlation_id = env.correlation_id or env.id
        properties = envelope_properties(
            env,
            app_id=self.name,
            correlation_id=correlation_id,
            reply_to=REPLY_TO,
            # Nobody waits for the answer after the timeout: the request expires with it.
            **({"expiration": str(int(seconds * 1000))} if expires else {}),
        )
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self.publish(
                exchange, routing_key or user_key(env.user_id, env.type), envelope_body(env), properties, mandatory=True
            )
            return await asyncio.wait_for(future, seconds)
        except TimeoutError as exc:
            raise BrokerTimeout(f"no answer to {env.type} within {seconds:.0f}s") from exc
        finally:
            self._pending.pop(correlation_id, None)
