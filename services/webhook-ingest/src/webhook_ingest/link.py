"""The service's RabbitMQ link: the HTTP side is up from the start; publishing answers 503 until connected.

webhook-ingest only publishes, so it does so without FastStream (`ConfirmedPublisher`); the
first connection is made in the background like every service's `BrokerLink`, and aio-pika's
robust connection restores it after that.
"""

from fleet_shared.connect import PublisherLink
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology

SERVICE = "webhook-ingest"


def make_link(settings: FleetSettings, topology: Topology) -> PublisherLink:
    return PublisherLink(settings.rabbitmq_url, topology, SERVICE)
