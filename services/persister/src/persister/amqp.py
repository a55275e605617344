"""FastStream subscribers: `<p>.persister.events` (store, then ack) and `<p>.persister.queries` (reply).

Events: a valid event is acked only after its write succeeded. One that can never be stored (not
an envelope of a stored type, or a write MongoDB refuses outright) is moved to `<queue>.dlq` with
the reason (`fleet_shared.deadletter`), then acked. When MongoDB stays unavailable past the retry
window the delivery is rejected with requeue: it comes back later, and the quorum queue's delivery
limit dead-letters it if that goes on (RabbitMQ counts rejects on every version).
Both queues are declared by `declare_topology`; the subscribers only check they exist.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from faststream import AckPolicy
from faststream.exceptions import RejectMessage
from faststream.rabbit import RabbitBroker, RabbitResponse
from faststream.rabbit.message import RabbitMessage as RabbitMessageType
from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable, answer, consume, make_broker
from fleet_shared.connect import PublisherLink
from fleet_shared.contracts.stream import StoredEvent
from fleet_shared.deadletter import dead_letter
from fleet_shared.topology import Topology

from .batching import EventBatcher
from .config import SERVICE_NAME, Settings
from .eventlog import PublishStored
from .handlers import EventHandler, MalformedEvent, parse_event
from .metrics import EVENTS_REJECTED, EVENTS_REQUEUED
from .queries import QueryService
from .store import StoreUnavailable

log = logging.getLogger(__name__)


def make_persister_broker(settings: Settings) -> RabbitBroker:
    return make_broker(settings, SERVICE_NAME, prefetch=settings.prefetch)


def stream_publisher(link: PublisherLink, topology: Topology) -> PublishStored:
    """What `EventHandler` publishes stored events with: each to `<p>.stream` as `user.<id>.<type>`,
    confirmed (nobody bound is fine: not mandatory), in the order given. They are published at once
    and still reach the broker in that order: `ConfirmedPublisher.publish` queues its frame before
    its first wait, and `gather` starts them in order (FastStream's publish waits before that, so
    a burst of one user's events reached consumers out of order through it)."""

    async def publish(stored: Sequence[StoredEvent]) -> None:
        publisher = link.require()
        await asyncio.gather(*(publisher.publish_envelope(topology.stream, env) for env in stored))

    return publish


def build_broker(
    settings: Settings, topology: Topology, events: EventHandler, queries: QueryService, broker: RabbitBroker
) -> RabbitBroker:
    queue = topology.persister_events
    # Concurrent deliveries are written together, each acked after the write that held it (ADR 0007).
    batcher = EventBatcher(
        events.handle, max_size=settings.batch_max_size, window=settings.batch_window.total_seconds()
    )

    async def give_up(message: RabbitMessageType, reason: str) -> None:
        """Move the delivery to the dead-letter queue with `reason`; returning acks it."""
        try:
            await dead_letter(broker, topology, queue, message.raw_message, reason, SERVICE_NAME)
        except BrokerUnavailable as exc:
            # Not in the DLQ yet: keep it here (RabbitMQ's own DLX takes it at the delivery limit).
            raise RejectMessage(requeue=True) from exc

    async def on_event(message: Any) -> None:  # the RabbitMessage (`whole_delivery`)
        routing_key = message.raw_message.routing_key
        try:
            env = parse_event(message.body, routing_key)
        except MalformedEvent as exc:
            EVENTS_REJECTED.labels("malformed").inc()
            log.warning("dead-lettering malformed event %s (%s): %s", message.message_id, routing_key, exc)
            await give_up(message, f"malformed: {exc}")
            return
        try:
            await batcher.submit(env)
        except (StoreUnavailable, BrokerUnavailable) as exc:
            # Stored (or not) but not yet published to the stream: the redelivery publishes it, same `seq`.
            log.warning("MongoDB or RabbitMQ unavailable, handing %s %s back to the queue: %s", env.type, env.id, exc)
            EVENTS_REQUEUED.inc()
            raise RejectMessage(requeue=True) from exc
        except PyMongoError as exc:
            # A write MongoDB refuses for good (not an outage): retrying cannot help.
            EVENTS_REJECTED.labels("write_refused").inc()
            log.exception("dead-lettering %s %s: write refused", env.type, env.id)
            await give_up(message, f"write refused by MongoDB: {exc}")
            return
        # Returning normally acks the delivery, after the write.

    async def on_query(message: Any) -> RabbitResponse:  # the RabbitMessage (`whole_delivery`)
        return answer(await queries.answer(message.body, message.raw_message.routing_key), settings.broker_max_reply_bytes)

    consume(broker, topology.queue(queue), on_event, no_reply=True)
    consume(broker, topology.queue(topology.persister_queries), on_query, ack_policy=AckPolicy.ACK)
    return broker
