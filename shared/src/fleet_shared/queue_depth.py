"""Gauges of how many messages wait in some queues (dead letters, parked webhooks), read at scrape time.

Each `/metrics` scrape declares the queues passively (which changes nothing on the broker) on a
small connection of the service's own and sets the gauge. A queue that cannot be read (broker
away, queue missing) is reported as NaN rather than failing the scrape or showing a stale number.
"""

import asyncio
import logging
import math
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity
from prometheus_client import Gauge

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0

DEAD_LETTERS = Gauge(
    "fleet_dead_letter_messages", "Messages in a dead-letter queue (read from RabbitMQ at scrape time)", ["queue"]
)
PARKED = Gauge(
    "fleet_parked_messages", "Webhooks of unknown sessions kept in the parked queue (read at scrape time)", ["queue"]
)


class QueueDepths:
    def __init__(self, url: str, name: str, gauge: Gauge, queues: Sequence[str]) -> None:
        self._url = url
        self._name = name
        self._gauge = gauge
        self.queues = list(queues)
        self._connection: AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    await self._read_all()
            except (AMQPError, OSError, TimeoutError, RuntimeError) as exc:
                log.warning("%s: could not read queue depths: %r", self._name, exc)
                await self._drop_connection()
                for queue in self.queues:
                    self._gauge.labels(queue).set(math.nan)

    async def _read_all(self) -> None:
        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(
                self._url, client_properties={"connection_name": f"{self._name}-metrics"}
            )
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            for queue in self.queues:
                try:
                    declared = await channel.declare_queue(queue, passive=True)
                    self._gauge.labels(queue).set(declared.declaration_result.message_count or 0)
                except ChannelNotFoundEntity:
                    self._gauge.labels(queue).set(math.nan)
                    # The broker closed the channel over the missing queue: go on with a new one.
                    channel = await self._connection.channel(publisher_confirms=False)
        finally:
            if not channel.is_closed:
                await channel.close()

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except (AMQPError, OSError, RuntimeError):
                pass

    async def close(self) -> None:
        await self._drop_connection()
