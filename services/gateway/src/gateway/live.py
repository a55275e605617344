"""Live events for WebSocket clients: one temporary subscription per socket, behind a bounded buffer.

Each socket gets its own server-named, exclusive, auto-delete queue (`fleet_shared.subscribe`) on
`<p>.stream`, where the persister publishes each event once stored with its `seq`, bound to the
public event types of the token's user only (`user.<sub>.message.*`,
`user.<sub>.session.status_changed|qr_updated`; internal types such as `session.status_reported`
and `session.active` are never bound). The queue is bounded (`topology.live_queue_arguments`: oldest dropped first)
and consumed with a small prefetch into an asyncio queue of `events_buffer` envelopes; the
socket writer drains that. When the writer falls behind so far that the buffer is full, the
stream is marked overflowed and the socket is closed: a client never silently misses events.
All sockets share one AMQP connection, each with a channel of its own.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.events import PUBLIC_EVENT_TYPES
from fleet_shared.contracts.stream import StoredEvent
from fleet_shared.subscribe import Subscription, subscribe
from fleet_shared.topology import Topology

from .metrics import LIVE_SOCKETS

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0

# WebSocket close codes (RFC 6455 section 7.4 and the private 4000-4999 range).
CLOSE_POLICY = 1008  # the token is missing, invalid or expired, or the user has too many sockets
CLOSE_TRY_AGAIN_LATER = 1013  # the broker is unavailable, or this gateway is at capacity
CLOSE_SLOW_CONSUMER = 4001  # the client did not keep up: `events_buffer` events were waiting


@dataclass(frozen=True)
class Closing:
    code: int
    reason: str  # snake_case, also the metrics label
    message: str


class LiveRefused(Exception):
    def __init__(self, closing: Closing) -> None:
        super().__init__(closing.message)
        self.closing = closing


class LiveStream:
    """One socket's events, in order, at most `buffer_size` of them waiting."""

    def __init__(
        self, connection: AbstractRobustConnection, topology: Topology, user_id: str, *, buffer_size: int, prefetch: int
    ) -> None:
        self.user_id = user_id
        self._buffer: asyncio.Queue[StoredEvent] = asyncio.Queue(buffer_size)
        self.overflowed = asyncio.Event()
        self.subscription: Subscription = subscribe(
            connection, topology, self.offer, events=PUBLIC_EVENT_TYPES.values(), user_id=user_id, prefetch=prefetch,
            stored=True,
        )

    async def offer(self, env: Envelope) -> None:
        """The subscription's handler: never waits, so a slow socket never holds up the consumer."""
        if self.overflowed.is_set():
            return
        try:
            self._buffer.put_nowait(cast(StoredEvent, env))  # a `stored` subscription's
        except asyncio.QueueFull:
            self.overflowed.set()

    async def next(self) -> StoredEvent:
        return await self._buffer.get()


class LiveHub:
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        buffer_size: int,
        prefetch: int,
        max_per_user: int,
        max_total: int,
        name: str = "gateway-live",
    ) -> None:
        self._url = url
        self._topology = topology
        self._buffer_size = buffer_size
        self._prefetch = prefetch
        self._max_per_user = max_per_user
        self._max_total = max_total
        self._name = name
        self._connection: AbstractRobustConnection | None = None
        self._open: dict[str, set[LiveStream]] = {}

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": self._name}, reconnect_interval=1.0
        )

    @property
    def connected(self) -> bool:
        c = self._connection
        return c is not None and not c.is_closed and c.connected.is_set()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def queues(self, user_id: str) -> list[str]:
        """The live queues of `user_id`'s open sockets (diagnostics and tests)."""
        return [s.subscription.queue_name for s in self._open.get(user_id, ()) if s.subscription.active]

    @property
    def open_sockets(self) -> int:
        return sum(len(streams) for streams in self._open.values())

    @asynccontextmanager
    async def stream(self, user_id: str) -> AsyncIterator[LiveStream]:
        """A started stream of `user_id`'s public events; its queue is deleted on the way out."""
        if not self.connected or self._connection is None:
            raise LiveRefused(Closing(CLOSE_TRY_AGAIN_LATER, "broker_unavailable", "the message broker is unavailable"))
        mine = self._open.setdefault(user_id, set())
        if len(mine) >= self._max_per_user:
            raise LiveRefused(
                Closing(CLOSE_POLICY, "too_many_connections", f"at most {self._max_per_user} event sockets per user")
            )
        if self.open_sockets >= self._max_total:
            raise LiveRefused(Closing(CLOSE_TRY_AGAIN_LATER, "server_busy", "this gateway has no room for another socket"))
        stream = LiveStream(
            self._connection, self._topology, user_id, buffer_size=self._buffer_size, prefetch=self._prefetch
        )
        mine.add(stream)
        LIVE_SOCKETS.inc()
        try:
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    await stream.subscription.start()
            except (TimeoutError, AMQPError, ConnectionError) as exc:
                log.warning("live events for %s: could not subscribe: %r", user_id, exc)
                raise LiveRefused(
                    Closing(CLOSE_TRY_AGAIN_LATER, "broker_unavailable", "the message broker is unavailable")
                ) from exc
            try:
                yield stream
            finally:
                await stream.subscription.close()
        finally:
            mine.discard(stream)
            if not mine:
                self._open.pop(user_id, None)
            LIVE_SOCKETS.dec()
