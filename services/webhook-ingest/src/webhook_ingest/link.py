"""The service's RabbitMQ link: the HTTP side is up from the start; publishing answers 503 until connected.

webhook-ingest only publishes, so it does so without FastStream (`ConfirmedPublisher`); the
first connection is made in the background like every service's `BrokerLink`, and aio-pika's
robust connection restores it after that.
"""

from fleet_shared.broker import ConfirmedPublisher
from fleet_shared.connect import Link
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology

SERVICE = "webhook-ingest"


class PublisherLink(Link[ConfirmedPublisher]):
    """A `ConfirmedPublisher` connected in the background (after the topology is declared)."""

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        publisher = ConfirmedPublisher(url, name)
        super().__init__(publisher, publisher.connect, url, topology, name)

    async def ready(self) -> bool:
        return self.connection.connected and self.resource.connected

    async def stop(self) -> None:
        await super().stop()
        await self.resource.close()


def make_link(settings: FleetSettings, topology: Topology) -> PublisherLink:
    return PublisherLink(settings.rabbitmq_url, topology, SERVICE)
