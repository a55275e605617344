"""The service's RabbitMQ connection: started in the background and retried until RabbitMQ answers.

The HTTP side is up from the start; until the broker is connected (and the topology declared)
publishing raises `BrokerUnavailable`, which the route answers with 503 so WAHA retries.
"""

import asyncio
import logging

from faststream.rabbit import RabbitBroker

from fleet_shared.broker import BrokerUnavailable, make_broker
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology, declare_topology_at

log = logging.getLogger(__name__)

SERVICE = "webhook-ingest"
FIRST_RETRY = 0.5
MAX_RETRY = 5.0
DECLARE_TIMEOUT = 10.0
PING_TIMEOUT = 0.5


class BrokerLink:
    def __init__(self, settings: FleetSettings, topology: Topology) -> None:
        self.broker: RabbitBroker = make_broker(settings, SERVICE)
        self._url = settings.rabbitmq_url
        self._topology = topology
        self._started = asyncio.Event()
        self._attempted = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def started(self) -> bool:
        return self._started.is_set()

    async def start(self, wait: float) -> None:
        """Begin connecting; wait up to `wait` seconds for the first attempt, never fail."""
        self._task = asyncio.create_task(self._connect_until_started(), name="webhook-ingest-broker-connect")
        try:
            await asyncio.wait_for(self._attempted.wait(), wait)
        except TimeoutError:
            log.warning("RabbitMQ did not answer within %.0fs; still trying in the background", wait)

    async def _connect_until_started(self) -> None:
        delay = FIRST_RETRY
        attempt = 0
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(declare_topology_at(self._url, self._topology), DECLARE_TIMEOUT)
                await self.broker.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure to connect means: try again later
                level = logging.WARNING if attempt == 1 or attempt % 20 == 0 else logging.DEBUG
                log.log(level, "RabbitMQ not usable (attempt %d: %r); answering 503 and retrying", attempt, exc)
                self._attempted.set()
                await asyncio.sleep(delay)  # back-off between connection attempts
                delay = min(delay * 2, MAX_RETRY)
                continue
            self._started.set()
            self._attempted.set()
            log.info("connected to RabbitMQ, topology %r declared", self._topology.prefix)
            return

    def require(self) -> RabbitBroker:
        """The broker, or `BrokerUnavailable` while it has not connected yet."""
        if not self.started:
            raise BrokerUnavailable("not connected to RabbitMQ yet")
        return self.broker

    async def ready(self) -> bool:
        return self.started and await self.broker.ping(PING_TIMEOUT)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.broker.stop()
