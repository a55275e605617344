"""The service's RabbitMQ link: the HTTP side is up from the start; publishing answers 503 until connected."""

from fleet_shared.broker import make_broker
from fleet_shared.connect import BrokerLink
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology

SERVICE = "webhook-ingest"


def make_link(settings: FleetSettings, topology: Topology) -> BrokerLink:
    return BrokerLink(make_broker(settings, SERVICE), settings.rabbitmq_url, topology, SERVICE)
