"""The broker side: the subscribers on every command partition, the query queue and the activity queue.

Commands (and WAHA's status reports) arrive on `<p>.orchestrator.commands.<k>`: quorum queues with
a single active consumer, so each partition is driven by one replica at a time; this replica
consumes all of them with prefetch > 1 and runs each user's messages one at a time, in order
(`ordering.UserSerializer`). Queries arrive on `<p>.orchestrator.queries` (competing consumers), and
webhook-ingest's `session.active` reports on `<p>.orchestrator.activity` (competing consumers: they
only move each user's idle clock forward, in any order).

Every delivery is read by `fleet_shared.inbound`: the user is the routing key's, and an envelope
naming another user or type is refused (a reply of 400 when someone waits for one, else rejected
to the dead-letter queue). Fleet-wide admin queries come as `system.admin.<type>`.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from faststream.exceptions import NackMessage, RejectMessage
from faststream.rabbit import RabbitBroker, RabbitResponse
from faststream.rabbit.message import RabbitMessage

from fleet_shared.broker import answer, consume
from fleet_shared.contracts import Envelope, Reply, utcnow
from fleet_shared.contracts.events import ContactLidSeen, MediaAvailable, SessionActive, SessionStatusReported
from fleet_shared.inbound import BadDelivery, is_replay, read_delivery, routing_user
from fleet_shared.topology import Topology

from ..bootstrap import Orchestrator
from ..config import Settings
from ..handlers.errors import Retry
from ..metrics import MESSAGE_DURATION, MESSAGES, USERS_IN_FLIGHT
from .ordering import UserSerializer

log = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 5.0


def register_subscribers(
    broker: RabbitBroker, topology: Topology, orchestrator: Orchestrator, serializer: UserSerializer, settings: Settings
) -> None:
    subscribers = Subscribers(orchestrator, serializer, settings)
    for name in topology.orchestrator_command_queues:
        consume(broker, topology.queue(name), subscribers.on_command)
    consume(broker, topology.queue(topology.orchestrator_queries), subscribers.on_query)
    consume(broker, topology.queue(topology.orchestrator_activity), subscribers.on_activity)
    media = topology.queue(topology.orchestrator_media)
    consume(broker, media, subscribers.on_media, prefetch=settings.media_prefetch)
    consume(broker, topology.queue(topology.orchestrator_contacts), subscribers.on_lid_seen)


class Subscribers:
    """Each takes the whole delivery (`fleet_shared.broker.whole_delivery`); annotated `Any` on purpose:
    FastStream would resolve a `RabbitMessage` annotation as context, through a thread, per delivery."""

    def __init__(
        self, orchestrator: Orchestrator, serializer: UserSerializer, settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._dispatcher = orchestrator.dispatcher
        self._reports = orchestrator.reports
        self._media = orchestrator.media
        self._lids = orchestrator.lids
        self._serializer = serializer
        self._request_timeout = settings.request_timeout
        self._max_reply_bytes = settings.broker_max_reply_bytes
        self._reply_margin = settings.reply_margin
        self._clock = clock  # what a message's age is measured by (its `occurredAt` is the sender's clock)

    async def on_command(self, message: Any) -> RabbitResponse | None:
        key = message.raw_message.routing_key
        user_id = routing_user(key) or _replayed_user(message)
        if user_id is None:
            return refuse(message, f"not a user routing key: {key!r}")
        # Take this user's turn before anything else awaits: that is what keeps arrival order.
        try:
            async with self._serializer.turn(user_id):
                USERS_IN_FLIGHT.set(self._serializer.active_users)
                return await self._command(message)
        finally:
            USERS_IN_FLIGHT.set(self._serializer.active_users)

    async def on_query(self, message: Any) -> RabbitResponse | None:
        try:
            env = read(message)
        except BadDelivery as exc:
            return refuse(message, str(exc))
        reply = await self._dispatcher.query(env)
        MESSAGES.labels(env.type, outcome(reply)).inc()
        return answer(reply, self._max_reply_bytes)

    async def on_activity(self, message: Any) -> None:
        try:
            env = read(message)
        except BadDelivery as exc:
            log.warning("activity event %s refused: %s", message.message_id, exc)
            raise RejectMessage(requeue=False) from exc
        if env.type != SessionActive.TYPE:
            return  # an event of another type, bound by an earlier version (`Topology.retired_bindings`)
        try:
            await self._reports.active(env)
        except Retry as exc:
            await redeliver_later(message, exc)

    async def on_media(self, message: Any) -> None:
        await self._event(message, MediaAvailable.TYPE, self._media.copy)

    async def on_lid_seen(self, message: Any) -> None:
        if self._lids is not None:
            await self._event(message, ContactLidSeen.TYPE, self._lids.seen)

    async def _event(self, message: Any, type_: str, handle: Callable[[Envelope], Awaitable[None]]) -> None:
        """An event of one type on a queue of its own: refused to the DLQ if it is not one, handed
        back later when its handler says `Retry`."""
        try:
            env = read(message, types={type_})
        except BadDelivery as exc:
            log.warning("%s %s refused: %s", type_, message.message_id, exc)
            raise RejectMessage(requeue=False) from exc
        try:
            await handle(env)
        except Retry as exc:
            await redeliver_later(message, exc)

    async def _command(self, message: RabbitMessage) -> RabbitResponse | None:
        try:
            env = read(message)
        except BadDelivery as exc:
            return refuse(message, str(exc))
        started = time.perf_counter()
        if env.type == SessionStatusReported.TYPE:
            await self._report(env, message)
            MESSAGE_DURATION.labels(env.type).observe(time.perf_counter() - started)
            return None
        if message.reply_to and expired(env, self._clock(), self._request_timeout, self._reply_margin):
            # Its requester has given up (a 504): doing it now would surprise them, and a retry of
            # theirs (the same Idempotency-Key) is on its way or was answered already.
            MESSAGES.labels(env.type, "expired").inc()
            log.info("dropped %s of %s: %.1f s old, past its requester's deadline", env.type, env.user_id,
                     (self._clock() - env.occurred_at).total_seconds())
            # Answered all the same (not mandatory: a reply-to address that is gone drops it), for a
            # handler's reply is sent whatever it returns.
            return answer(Reply.failure("timeout", f"{env.type} arrived after its requester's deadline", 504))
        reply = await self._dispatcher.command(env, self._deadline(env, message))
        MESSAGES.labels(env.type, outcome(reply)).inc()
        MESSAGE_DURATION.labels(env.type).observe(time.perf_counter() - started)
        return answer(reply, self._max_reply_bytes)

    async def _report(self, env: Envelope, message: RabbitMessage) -> None:
        try:
            await self._reports.status_reported(env, redelivered=bool(message.raw_message.redelivered))
            MESSAGES.labels(env.type, "ok").inc()
        except Retry as exc:
            MESSAGES.labels(env.type, "retry").inc()
            # Holding the user's turn meanwhile keeps their later messages behind this one.
            await redeliver_later(message, exc)
        except Exception:
            # A bug must not loop a message forever: log it and let it go (acked).
            MESSAGES.labels(env.type, "internal_error").inc()
            log.exception("status report of %s failed", env.user_id)

    def _deadline(self, env: Envelope, message: RabbitMessage) -> float:
        now = asyncio.get_running_loop().time()
        if message.reply_to:
            return reply_deadline(env, now, self._request_timeout, self._reply_margin)
        # Nobody waits (upkeep commands, fire-and-forget): the whole budget, from now.
        return now + self._request_timeout.total_seconds()


def read(message: RabbitMessage, types: Collection[str] | None = None) -> Envelope:
    """`read_delivery`, taking an operator's replay from a dead-letter queue as well."""
    replayed = is_replay(message.raw_message.headers)
    return read_delivery(message.body, message.raw_message.routing_key, types=types, replays=replayed)


def _replayed_user(message: RabbitMessage) -> str | None:
    """The user of a replayed command: its envelope's (its routing key names its queue)."""
    if not is_replay(message.raw_message.headers):
        return None
    try:
        return read(message).user_id
    except BadDelivery:
        return None


def expired(env: Envelope, now: datetime, request_timeout: timedelta, margin: timedelta) -> bool:
    """Whether a reply to `env` could no longer reach its requester in time."""
    return (now - env.occurred_at) >= request_timeout - margin


def reply_deadline(env: Envelope, now: float, request_timeout: timedelta, margin: timedelta, floor: float = 1.0) -> float:
    """When a reply must be on its way: the requester waits `request_timeout` from when it asked."""
    budget = (request_timeout - margin).total_seconds()
    age = (utcnow() - env.occurred_at).total_seconds()
    if age > 0:  # a clock behind ours is not a reason to wait longer
        budget -= age
    return now + max(floor, budget)


async def redeliver_later(message: RabbitMessage, exc: Exception) -> None:
    """Hand the delivery back after a backoff that grows with its delivery count (bounded)."""
    deliveries = int((message.raw_message.headers or {}).get("x-delivery-count") or 0)  # type: ignore[arg-type]
    delay = min(RETRY_BACKOFF_MAX, 0.25 * 2**deliveries)
    log.warning("%s will be redelivered in %.1fs: %s", message.raw_message.routing_key, delay, exc)
    await asyncio.sleep(delay)
    raise NackMessage(requeue=True) from exc


def refuse(message: RabbitMessage, reason: str) -> RabbitResponse:
    log.warning("refused message %s (key %s): %s", message.message_id, message.raw_message.routing_key, reason)
    MESSAGES.labels("invalid", "refused").inc()
    if message.reply_to:
        return answer(Reply.failure("invalid_message", reason, 400))  # small: the default bound holds
    raise RejectMessage(requeue=False)


def outcome(reply: Reply) -> str:
    return "ok" if reply.ok else (reply.error.code if reply.error else "error")
