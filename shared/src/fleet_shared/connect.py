"""Reaching RabbitMQ at start-up: keep trying in the background so a service starts without it.

Until the first connection succeeds the service is up but not ready (`/readyz` says 503, and a
request that needs the broker is refused with 503). After that, aio-pika's robust connection
restores connections, channels and consumers by itself.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from faststream.rabbit import RabbitBroker

from .broker import BrokerUnavailable, ConfirmedPublisher
from .topology import Topology, declare_topology_at

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_RETRY = 0.5
MAX_RETRY = 5.0
DECLARE_TIMEOUT = 10.0


class BackgroundConnection:
    """Runs `connect` (after declaring the topology) until it succeeds, backing off between tries."""

    def __init__(self, url: str, topology: Topology, connect: Callable[[], Awaitable[object]], name: str) -> None:
        self._url = url
        self._topology = topology
        self._connect = connect
        self._name = name
        self._connected = asyncio.Event()
        self._tried = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def require(self) -> None:
        if not self.connected:
            raise BrokerUnavailable("not connected to RabbitMQ yet")

    async def start(self, wait: float = 0.0) -> None:
        """Begin connecting; wait up to `wait` seconds for the first attempt's outcome, never fail."""
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-rabbitmq-connect")
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tried.wait(), wait)

    async def _run(self) -> None:
        delay, attempt = FIRST_RETRY, 0
        # Checking the flag, not only relying on cancel(): Python 3.11's wait machinery can swallow a
        # cancellation that races with a failing connect, and this loop would then go on for ever.
        while not self._stopping:
            attempt += 1
            try:
                async with asyncio.timeout(DECLARE_TIMEOUT):
                    await declare_topology_at(self._url, self._topology)
                await self._connect()
            except Exception as exc:  # any failure to connect means: try again later
                level = logging.WARNING if attempt == 1 or attempt % 20 == 0 else logging.DEBUG
                log.log(level, "%s: RabbitMQ not usable (attempt %d: %r); retrying", self._name, attempt, exc)
                self._tried.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY)
                continue
            self._connected.set()
            self._tried.set()
            log.info("%s: connected to RabbitMQ, topology %r declared", self._name, self._topology.prefix)
            return

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Link(Generic[T]):
    """`resource`, connected in the background by `connect` once the topology is declared:
    `start` returns at once (or after `wait` seconds), `require` answers the resource or raises
    `BrokerUnavailable` while it has not connected yet. Subclasses say when it is `ready`."""

    def __init__(self, resource: T, connect: Callable[[], Awaitable[object]], url: str, topology: Topology, name: str) -> None:
        self.resource = resource
        self.connection = BackgroundConnection(url, topology, connect, name)

    async def start(self, wait: float = 0.0) -> None:
        await self.connection.start(wait)

    def require(self) -> T:
        self.connection.require()
        return self.resource

    async def stop(self) -> None:
        await self.connection.stop()


class BrokerLink(Link[RabbitBroker]):
    """A FastStream broker that is started in the background and usable once connected."""

    PING_TIMEOUT = 1.0

    def __init__(self, broker: RabbitBroker, url: str, topology: Topology, name: str) -> None:
        super().__init__(broker, broker.start, url, topology, name)

    async def ready(self) -> bool:
        return self.connection.connected and await self.resource.ping(self.PING_TIMEOUT)

    async def stop(self) -> None:
        await super().stop()
        await self.resource.stop()


class PublisherLink(Link[ConfirmedPublisher]):
    """A `ConfirmedPublisher` connected in the background (after the topology is declared), for a
    service that publishes on its hot path without FastStream."""

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        publisher = ConfirmedPublisher(url, name)
        super().__init__(publisher, publisher.connect, url, topology, name)

    async def ready(self) -> bool:
        return self.connection.connected and self.resource.connected

    async def stop(self) -> None:
        await super().stop()
        await self.resource.close()
