"""FastStream subscribers: `<p>.webhooks.stream` (schedule, then ack) and `<p>.webhooks.requests` (reply).

A stream event is acked only once its deliveries are in MongoDB. While MongoDB or the persister
(filling a hole) cannot answer, the event is retried here for `RETRY_WINDOW`, then handed back to
the queue; a body that is no stored event is dead-lettered with the reason.
"""

import asyncio
import logging
import time
from typing import Any

from faststream import AckPolicy
from faststream.exceptions import RejectMessage
from faststream.rabbit import RabbitBroker, RabbitResponse
from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerTimeout, BrokerUnavailable, RpcClient, answer, consume, make_broker
from fleet_shared.contracts import Reply, envelope
from fleet_shared.contracts.stream import STREAMED_TYPES, EventPage, ListEvents
from fleet_shared.deadletter import dead_letter
from fleet_shared.inbound import BadDelivery, is_replay, read_stored_delivery
from fleet_shared.topology import Topology

from .config import SERVICE_NAME, Settings
from .intake import EventsUnavailable, Intake
from .requests import Requests

log = logging.getLogger(__name__)

RETRY_WINDOW = 30.0
RETRY_PAUSE = 0.5


def events_asker(rpc: RpcClient, topology: Topology, timeout: float):
    async def ask(user_id: str, query: ListEvents) -> EventPage:
        try:
            reply: Reply = await rpc.request(topology.queries, envelope(query, user_id), timeout)
        except (BrokerUnavailable, BrokerTimeout) as exc:
            raise EventsUnavailable(str(exc)) from exc
        if not reply.ok:
            raise EventsUnavailable(f"event.list answered {reply.error}")
        return EventPage.model_validate(reply.data)

    return ask


def build_broker(settings: Settings, topology: Topology, intake: Intake, requests: Requests) -> RabbitBroker:
    broker = make_broker(settings, SERVICE_NAME, prefetch=32)
    queue = topology.webhooks_stream
    one_at_a_time = asyncio.Lock()  # each user's events are scheduled in the order they come

    async def on_event(message: Any) -> None:  # the RabbitMessage (`whole_delivery`)
        raw = message.raw_message
        try:
            event = read_stored_delivery(message.body, raw.routing_key, types=STREAMED_TYPES, replays=is_replay(raw.headers))
        except BadDelivery as exc:
            log.warning("dead-lettering %s: %s", message.message_id, exc)
            try:
                await dead_letter(broker, topology, queue, raw, f"malformed: {exc}", SERVICE_NAME)
            except BrokerUnavailable as lost:
                raise RejectMessage(requeue=True) from lost
            return
        deadline = time.monotonic() + RETRY_WINDOW
        async with one_at_a_time:
            while True:
                try:
                    await intake.take(event)
                    return  # acked
                except (PyMongoError, EventsUnavailable) as exc:
                    if time.monotonic() > deadline:
                        log.warning("handing %s seq %d back to the queue: %r", event.user_id, event.seq, exc)
                        raise RejectMessage(requeue=True) from exc
                    await asyncio.sleep(RETRY_PAUSE)

    async def on_request(message: Any) -> RabbitResponse:
        return answer(await requests.answer(message.body, message.raw_message.routing_key), settings.broker_max_reply_bytes)

    consume(broker, topology.queue(queue), on_event, no_reply=True)
    consume(broker, topology.queue(topology.webhooks_requests), on_request, ack_policy=AckPolicy.ACK)
    return broker
