"""The broker side: FastStream subscribers on every command partition and on the query queue.

Commands (and WAHA's status reports) arrive on `<p>.orchestrator.commands.<k>`: quorum queues with
a single active consumer, so each partition is driven by one replica at a time; this replica
consumes all of them with prefetch > 1 and runs each user's messages one at a time, in order
(`UserSerializer`). Queries arrive on `<p>.orchestrator.queries` (competing consumers), and
webhook-ingest's `session.active` reports (a user's messages, at most one per user per
ACTIVITY_REPORT_INTERVAL and ingest process) on `<p>.orchestrator.activity` (competing consumers:
they only move each user's idle clock forward, in any order).

The user is the routing key's: the envelope must name the same user and the same type, otherwise
it is refused (a reply of 400 when someone waits for one, else rejected to the dead-letter queue).
Fleet-wide admin queries come as `system.admin.<type>`; their envelope names the admin who asks.
"""

import asyncio
import json
import logging
import time
from typing import Any

from faststream.exceptions import NackMessage, RejectMessage
from faststream.middlewares import AckPolicy
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue, RabbitResponse
from faststream.rabbit.message import RabbitMessage
from pymongo.errors import PyMongoError

from fleet_shared.broker import answer, publish_envelope, whole_delivery
from fleet_shared.contracts import Envelope, Reply, parse_envelope, utcnow
from fleet_shared.contracts.events import SessionActive
from fleet_shared.routing import ADMIN_KEY_PREFIX, parse_admin_key, parse_user_key
from fleet_shared.topology import Topology

from .config import Settings
from .dispatch import UserSerializer
from .handlers import Handlers, Retry, reply_deadline
from .metrics import ACTIVITY, MESSAGE_DURATION, MESSAGES, USERS_IN_FLIGHT
from .registry import SessionRegistry

log = logging.getLogger(__name__)

STATUS_REPORTED = "session.status_reported"
ACTIVITY_TYPES = frozenset({SessionActive.TYPE})
RETRY_BACKOFF_MAX = 5.0


class BrokerEvents:
    """Publishes facts on `<p>.events` (confirmed, persistent, deterministic ids)."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._exchange = topology.events

    async def publish(self, env: Envelope) -> None:
        await publish_envelope(self._broker, self._exchange, env)


class BadMessage(ValueError):
    pass


def _parse(body: bytes) -> Envelope:
    try:
        return parse_envelope(json.loads(body))
    except ValueError as exc:  # JSON and validation errors alike
        raise BadMessage(f"not a valid envelope: {exc}") from exc


def read_envelope(routing_key: str | None, body: bytes, user_id: str) -> Envelope:
    """The typed envelope, checked against the routing key it came with."""
    env = _parse(body)
    key = parse_user_key(routing_key or "")
    if env.user_id != user_id:
        raise BadMessage(f"envelope user {env.user_id!r} is not the routing key's user {user_id!r}")
    if env.type != key.type:
        raise BadMessage(f"envelope type {env.type!r} does not match routing key {routing_key!r}")
    return env


def read_admin_envelope(routing_key: str, body: bytes) -> Envelope:
    """A fleet-wide admin query: `system.admin.<type>`, the envelope of that type."""
    env = _parse(body)
    if env.type != parse_admin_key(routing_key):
        raise BadMessage(f"envelope type {env.type!r} does not match routing key {routing_key!r}")
    return env


def _routing_user(routing_key: str | None) -> str | None:
    try:
        return parse_user_key(routing_key or "").user_id
    except ValueError:
        return None


def _refuse(message: RabbitMessage, reason: str) -> RabbitResponse:
    log.warning("refused message %s (key %s): %s", message.message_id, message.raw_message.routing_key, reason)
    MESSAGES.labels("invalid", "refused").inc()
    if message.reply_to:
        return answer(Reply.failure("invalid_message", reason, 400))
    raise RejectMessage(requeue=False)


def _outcome(reply: Reply) -> str:
    return "ok" if reply.ok else (reply.error.code if reply.error else "error")


def register_subscribers(
    broker: RabbitBroker,
    topology: Topology,
    handlers: Handlers,
    serializer: UserSerializer,
    settings: Settings,
    registry: SessionRegistry,
) -> None:
    async def on_command(message: Any) -> RabbitResponse | None:  # the RabbitMessage (`whole_delivery`)
        raw = message.raw_message
        user_id = _routing_user(raw.routing_key)
        if user_id is None:
            return _refuse(message, f"not a user routing key: {raw.routing_key!r}")
        # Take this user's turn before anything else awaits: that is what keeps arrival order.
        try:
            async with serializer.turn(user_id):
                USERS_IN_FLIGHT.set(serializer.active_users)
                return await _handle_command(message, user_id)
        finally:
            USERS_IN_FLIGHT.set(serializer.active_users)

    async def _handle_command(message: RabbitMessage, user_id: str) -> RabbitResponse | None:
        raw = message.raw_message
        try:
            env = read_envelope(raw.routing_key, message.body, user_id)
        except (BadMessage, ValueError) as exc:
            return _refuse(message, str(exc))
        started = time.perf_counter()
        if env.type == STATUS_REPORTED:
            await _report(env, message)
            MESSAGE_DURATION.labels(env.type).observe(time.perf_counter() - started)
            return None
        loop = asyncio.get_running_loop()
        if message.reply_to:
            deadline = reply_deadline(env, loop.time(), settings.request_timeout, settings.reply_margin)
        else:  # nobody waits (upkeep commands, fire-and-forget): the whole budget, from now
            deadline = loop.time() + settings.request_timeout.total_seconds()
        reply = await handlers.command(env, deadline)
        MESSAGES.labels(env.type, _outcome(reply)).inc()
        MESSAGE_DURATION.labels(env.type).observe(time.perf_counter() - started)
        return answer(reply)

    async def _report(env: Envelope, message: RabbitMessage) -> None:
        raw = message.raw_message
        try:
            await handlers.status_reported(env, redelivered=bool(raw.redelivered))
            MESSAGES.labels(env.type, "ok").inc()
        except Retry as exc:
            MESSAGES.labels(env.type, "retry").inc()
            deliveries = int((raw.headers or {}).get("x-delivery-count") or 0)
            delay = min(RETRY_BACKOFF_MAX, 0.25 * 2**deliveries)
            log.warning("status report of %s will be redelivered in %.1fs: %s", env.user_id, delay, exc)
            # Holding the user's turn meanwhile keeps their later messages behind this one.
            await asyncio.sleep(delay)
            raise NackMessage(requeue=True) from exc
        except Exception:
            # A bug must not loop a message forever: log it and let it go (acked).
            MESSAGES.labels(env.type, "internal_error").inc()
            log.exception("status report of %s failed", env.user_id)

    async def on_query(message: Any) -> RabbitResponse | None:  # the RabbitMessage (`whole_delivery`)
        key = message.raw_message.routing_key or ""
        try:
            if key.startswith(ADMIN_KEY_PREFIX):
                env = read_admin_envelope(key, message.body)
            else:
                user_id = _routing_user(key)
                if user_id is None:
                    return _refuse(message, f"not a user routing key: {key!r}")
                env = read_envelope(key, message.body, user_id)
        except (BadMessage, ValueError) as exc:
            return _refuse(message, str(exc))
        reply = await handlers.query(env)
        MESSAGES.labels(env.type, _outcome(reply)).inc()
        return answer(reply)

    async def on_activity(message: Any) -> None:  # the RabbitMessage (`whole_delivery`)
        """Messages to or from the user (`session.active`): their idle clock starts again (never backwards)."""
        raw = message.raw_message
        user_id = _routing_user(raw.routing_key)
        if user_id is None:
            raise RejectMessage(requeue=False)
        try:
            env = read_envelope(raw.routing_key, message.body, user_id)
        except (BadMessage, ValueError) as exc:
            log.warning("activity event %s refused: %s", message.message_id, exc)
            raise RejectMessage(requeue=False) from exc
        if env.type not in ACTIVITY_TYPES:
            return
        try:
            # A message from the future (a phone's clock) counts as now.
            await registry.note_activity(user_id, min(env.occurred_at, utcnow()))
        except PyMongoError as exc:
            deliveries = int((raw.headers or {}).get("x-delivery-count") or 0)
            await asyncio.sleep(min(RETRY_BACKOFF_MAX, 0.25 * 2**deliveries))
            raise NackMessage(requeue=True) from exc
        ACTIVITY.inc()

    for name in topology.orchestrator_command_queues:
        # Declared (with their arguments) by declare_topology at start-up; here only consumed.
        queue = RabbitQueue(name, queue_type=QueueType.QUORUM, declare=False)
        broker.subscriber(queue, decoder=whole_delivery, ack_policy=AckPolicy.REJECT_ON_ERROR)(on_command)
    queries = RabbitQueue(topology.orchestrator_queries, declare=False)
    broker.subscriber(queries, decoder=whole_delivery, ack_policy=AckPolicy.REJECT_ON_ERROR)(on_query)
    activity = RabbitQueue(topology.orchestrator_activity, queue_type=QueueType.QUORUM, declare=False)
    broker.subscriber(activity, decoder=whole_delivery, ack_policy=AckPolicy.REJECT_ON_ERROR)(on_activity)
