"""Publishing on the broker: facts on `<p>.events`, and the orchestrator's own upkeep commands."""

from faststream.rabbit import RabbitBroker

from fleet_shared.broker import publish_envelope
from fleet_shared.contracts import Envelope
from fleet_shared.topology import Topology


class BrokerEvents:
    """`ports.EventPublisher`: confirmed, persistent, with the envelope's deterministic id."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._exchange = topology.events

    async def publish(self, env: Envelope) -> None:
        await publish_envelope(self._broker, self._exchange, env)


class PartitionCommands:
    """`ports.CommandPublisher`: straight to the partition exchange (hashed on `x-user-id`, like every
    command). Upkeep commands are the orchestrator's own business, not the public commands exchange's."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._exchange = topology.orchestrator_partition

    async def send(self, env: Envelope) -> None:
        await publish_envelope(self._broker, self._exchange, env)
