"""FastStream subscribers: `<p>.persister.events` (store, then ack) and `<p>.persister.queries` (reply).

Events: a valid event is acked only after its write succeeded; a malformed one is rejected
without requeue (the queue dead-letters it to `<queue>.dlq`); when MongoDB stays unavailable the
delivery is nacked and requeued (the quorum queue's delivery limit bounds how often).
Both queues are declared by `declare_topology`; the subscribers only check they exist.
"""

import logging

from faststream import AckPolicy
from faststream.exceptions import NackMessage, RejectMessage
from faststream.rabbit import RabbitBroker, RabbitQueue, RabbitResponse
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.message import RabbitMessage as RabbitMessageType

from fleet_shared.broker import answer, make_broker
from fleet_shared.topology import Topology

from .config import SERVICE_NAME, Settings
from .handlers import EventHandler, MalformedEvent, parse_event
from .metrics import EVENTS_REJECTED
from .queries import QueryService
from .store import StoreUnavailable

log = logging.getLogger(__name__)


async def raw_body(message: RabbitMessageType) -> bytes:
    """Decoder that leaves the body alone: parsing is ours, so a bad body cannot fail before us."""
    return message.body


def build_broker(settings: Settings, topology: Topology, events: EventHandler, queries: QueryService) -> RabbitBroker:
    broker = make_broker(settings, SERVICE_NAME, prefetch=settings.prefetch)

    @broker.subscriber(
        RabbitQueue(topology.persister_events, declare=False),
        decoder=raw_body,
        ack_policy=AckPolicy.REJECT_ON_ERROR,
        no_reply=True,
    )
    async def on_event(body: bytes, message: RabbitMessage) -> None:
        routing_key = message.raw_message.routing_key
        try:
            env = parse_event(body, routing_key)
        except MalformedEvent as exc:
            EVENTS_REJECTED.labels("malformed").inc()
            log.warning("dead-lettering malformed event %s (%s): %s", message.message_id, routing_key, exc)
            raise RejectMessage(requeue=False) from exc
        try:
            await events.handle([env])
        except StoreUnavailable as exc:
            log.warning("MongoDB unavailable, handing %s %s back to the queue: %s", env.type, env.id, exc)
            raise NackMessage(requeue=True) from exc
        except Exception as exc:
            # A write MongoDB refuses for good (not an outage): retrying cannot help.
            EVENTS_REJECTED.labels("write_refused").inc()
            log.exception("dead-lettering %s %s: write refused", env.type, env.id)
            raise RejectMessage(requeue=False) from exc
        # Returning normally acks the delivery, after the write.

    @broker.subscriber(
        RabbitQueue(topology.persister_queries, declare=False),
        decoder=raw_body,
        ack_policy=AckPolicy.ACK,
    )
    async def on_query(body: bytes, message: RabbitMessage) -> RabbitResponse:
        return answer(await queries.answer(body, message.raw_message.routing_key))

    return broker
