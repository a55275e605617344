"""The service's RabbitMQ link: the HTTP side is up from the start; publishing answers 503 until connected.

webhook-ingest only publishes, so it does so without FastStream (`ConfirmedPublisher`); the
first connection is made in the background like every service's `BrokerLink`, and aio-pika's
robust connection restores it after that.
"""

from fleet_shared.broker import ConfirmedPublisher
from fleet_shared.connect import BackgroundConnection
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology

SERVICE = "webhook-ingest"


class PublisherLink:
    """A `ConfirmedPublisher` connected in the background (after the topology is declared)."""

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        self.publisher = ConfirmedPublisher(url, name)
        self.connection = BackgroundConnection(url, topology, self.publisher.connect, name)

    async def start(self, wait: float = 0.0) -> None:
        await self.connection.start(wait)

    def require(self) -> ConfirmedPublisher:
        """The publisher, or `BrokerUnavailable` while it has not connected yet."""
        self.connection.require()
        return self.publisher

    async def ready(self) -> bool:
        return self.connection.connected and self.publisher.connected

    async def stop(self) -> None:
        await self.connection.stop()
        await self.publisher.close()


def make_link(settings: FleetSettings, topology: Topology) -> PublisherLink:
    return PublisherLink(settings.rabbitmq_url, topology, SERVICE)
