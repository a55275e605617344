"""Every exchange, queue and binding of waha-fleet, defined once, here (ADR 0018): declared by
`declare_topology`, subscribed to through `Queue.rabbit()`, documented by `fleet_shared.asyncapi`.

Each service calls `declare_topology` at start-up (it is idempotent), so a message published
before its consumer ever ran still finds its queue.

    gateway ──► <p>.commands ─┐ user.*.{session,message,chat,media}.*
    ingest ──► <p>.events ────┤ user.*.session.status_reported
                              ▼
                <p>.orchestrator.partition (x-consistent-hash on header x-user-id)
                              ▼
            <p>.orchestrator.commands.<k>  (quorum, single active consumer)

    gateway ──► <p>.queries ── user.*.session.{get,admin_get}, system.admin.sessions.* ──► <p>.orchestrator.queries
                           └── user.*.{chat,message,group,contact}.list, user.*.media.get ──► <p>.persister.queries
    <p>.events ── user.*.message.*, user.*.chat.read, user.*.session.{status_changed,qr_updated} ──► <p>.persister.events (quorum)
    persister ──► <p>.stream ── user.<id>.<type> (each public event once stored, with its seq) ──► live WebSockets
                            └── user.<id>.# (bound per user while they have a webhook) ──► <p>.webhooks.stream
    gateway ──► <p>.queries ── user.*.webhook.* ──► <p>.webhooks.requests : webhook subscriptions, delivery logs
    <p>.events ── user.*.message.*, user.*.chat.{read,updated}, user.*.contact.lids_mapped ──► <p>.persister.events (quorum)
    ingest ──► <p>.events ── user.*.session.active ──► <p>.orchestrator.activity (quorum): idle clock
    ingest, orchestrator ──► <p>.events ── user.*.media.available ──► <p>.orchestrator.media (quorum): copy media
    ingest ──► <p>.events ── user.*.contact.lid_seen ──► <p>.orchestrator.contacts (quorum): a @lid's phone number
    ingest ──► <p>.parked (fanout) ──► <p>.ingest.parked : webhooks of unknown sessions
    dead letters ──► <p>.dlx (direct, key = source queue) ──► <queue>.dlq

Subscribers outside this fixed set (declared by `fleet_shared.subscribe`, not at start-up):

    <p>.events ── user.<id>.<type> or user.*.<type> ──► <p>.sub.<name>  (a service's durable queue, DLX)
                                                   └──► amq.gen-…       (temporary: exclusive, auto-delete,
                                                                         bounded; e.g. one per WebSocket)
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, ExchangeType
from faststream.rabbit import ExchangeType as RabbitExchangeType
from faststream.rabbit import QueueType, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import ClassicQueueArgs, QuorumQueueArgs

from .routing import all_users_binding, one_user_binding, user_key

USER_ID_HEADER = "x-user-id"
# The services that consume the fixed queues (each one's SERVICE_NAME).
ORCHESTRATOR = "session-orchestrator"
PERSISTER = "persister"
WEBHOOK_DISPATCHER = "webhook-dispatcher"
QUERY_TTL_MS = 60_000
DELIVERY_LIMIT = 10

# Temporary (live) subscriber queues: a consumer that stops reading loses the oldest events,
# never the broker's memory. Deleted by their owner; `x-expires` removes one nobody deleted.
LIVE_QUEUE_EXPIRES_MS = 60_000
LIVE_QUEUE_MAX_LENGTH = 1_000
LIVE_MESSAGE_TTL_MS = 60_000

SUBSCRIBER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def live_queue_arguments(max_length: int = LIVE_QUEUE_MAX_LENGTH) -> dict:
    """Arguments of a temporary subscriber queue (declare it exclusive, auto-delete, server-named)."""
    return {
        "x-expires": LIVE_QUEUE_EXPIRES_MS,
        "x-max-length": max_length,
        "x-overflow": "drop-head",
        "x-message-ttl": LIVE_MESSAGE_TTL_MS,
    }


def event_binding_keys(types: Iterable[str], user_id: str | None = None) -> list[str]:
    """Binding keys on `<p>.events` for these event types: of one user, or of every user (`None`)."""
    return [user_key(user_id, t) if user_id is not None else all_users_binding(t) for t in types]


@dataclass(frozen=True)
class Exchange:
    """One exchange: `declare_topology` declares it, FastStream's `rabbit()` object documents it."""

    name: str
    type: ExchangeType
    arguments: dict = field(default_factory=dict)

    def rabbit(self) -> RabbitExchange:
        return RabbitExchange(
            self.name, type=RabbitExchangeType(self.type.value), durable=True, declare=False, arguments=self.arguments
        )


@dataclass(frozen=True)
class Queue:
    """One queue: `declare_topology` declares it (with its arguments), its consumer subscribes to
    `rabbit()` (`fleet_shared.broker.consume`), and the AsyncAPI document shows it from the same object."""

    name: str
    arguments: dict = field(default_factory=dict)
    consumer: str | None = None  # the service that consumes it (None: kept for operators)
    description: str = ""

    def rabbit(self) -> RabbitQueue:
        # FastStream adds `x-queue-type` from `queue_type`, whose overload says which arguments it takes.
        arguments = {k: v for k, v in self.arguments.items() if k != "x-queue-type"}
        # `declare=False`: `declare_topology` did, with exactly these arguments.
        if self.arguments.get("x-queue-type") == "quorum":
            return RabbitQueue(
                self.name, QueueType.QUORUM, durable=True, declare=False, arguments=cast(QuorumQueueArgs, arguments)
            )
        return RabbitQueue(
            self.name, QueueType.CLASSIC, durable=True, declare=False, arguments=cast(ClassicQueueArgs, arguments)
        )


@dataclass(frozen=True)
class Binding:
    source: str  # exchange
    destination: str  # queue or exchange
    routing_key: str
    to_exchange: bool = False


class Topology:
    """Names and declarations for one `BROKER_PREFIX`."""

    def __init__(self, prefix: str, partitions: int = 16) -> None:
        self.prefix = prefix
        self.partitions = partitions
        p = prefix
        self.commands = f"{p}.commands"
        self.queries = f"{p}.queries"
        self.events = f"{p}.events"
        self.stream = f"{p}.stream"
        self.dlx = f"{p}.dlx"
        self.parked = f"{p}.parked"
        self.orchestrator_partition = f"{p}.orchestrator.partition"
        self.orchestrator_queries = f"{p}.orchestrator.queries"
        self.orchestrator_activity = f"{p}.orchestrator.activity"
        self.orchestrator_media = f"{p}.orchestrator.media"
        self.orchestrator_contacts = f"{p}.orchestrator.contacts"
        self.persister_events = f"{p}.persister.events"
        self.persister_queries = f"{p}.persister.queries"
        self.ingest_parked = f"{p}.ingest.parked"
        self.webhooks_stream = f"{p}.webhooks.stream"
        self.webhooks_requests = f"{p}.webhooks.requests"

    def orchestrator_commands(self, k: int) -> str:
        return f"{self.prefix}.orchestrator.commands.{k}"

    @property
    def orchestrator_command_queues(self) -> list[str]:
        return [self.orchestrator_commands(k) for k in range(self.partitions)]

    def webhook_binding(self, user_id: str) -> Binding:
        """What the dispatcher binds while `user_id` has a webhook (and unbinds after the last one):
        only those users' events reach `<p>.webhooks.stream`."""
        return Binding(self.stream, self.webhooks_stream, one_user_binding(user_id))

    def dead_letter_queue(self, queue: str) -> str:
        return f"{queue}.dlq"

    def subscriber_queue(self, name: str) -> str:
        """The durable queue of a service that subscribes to events under `name`."""
        if not SUBSCRIBER_NAME_RE.fullmatch(name):
            raise ValueError(f"subscriber name must match {SUBSCRIBER_NAME_RE.pattern}: {name!r}")
        return f"{self.prefix}.sub.{name}"

    def subscriber_declarations(self, name: str) -> tuple[list[Queue], list[Binding]]:
        """A subscriber's durable queue (quorum, delivery limit, DLX), its dead-letter queue and binding."""
        queue = self._work_queue(self.subscriber_queue(name))
        dlq = Queue(self.dead_letter_queue(queue.name), {"x-queue-type": "quorum"})
        return [queue, dlq], [Binding(self.dlx, dlq.name, queue.name)]

    def _work_queue(self, name: str, *, single_active: bool = False, consumer: str | None = None, description: str = "") -> Queue:
        args = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dlx,
            "x-dead-letter-routing-key": name,
        }
        if single_active:
            args["x-single-active-consumer"] = True
        return Queue(name, args, consumer, description)

    def _query_queue(self, name: str, consumer: str, description: str) -> Queue:
        # Queries are answered now or never: a stale one expires instead of piling up.
        return Queue(name, {"x-message-ttl": QUERY_TTL_MS}, consumer, description)

    def exchanges(self) -> list[Exchange]:
        return [
            Exchange(self.commands, ExchangeType.TOPIC),
            Exchange(self.queries, ExchangeType.TOPIC),
            Exchange(self.events, ExchangeType.TOPIC),
            Exchange(self.stream, ExchangeType.TOPIC),
            Exchange(self.dlx, ExchangeType.DIRECT),
            Exchange(self.parked, ExchangeType.FANOUT),
            Exchange(self.orchestrator_partition, ExchangeType.X_CONSISTENT_HASH, {"hash-header": USER_ID_HEADER}),
        ]

    def work_queues(self) -> list[Queue]:
        return [
            *(
                self._work_queue(
                    q, single_active=True, consumer=ORCHESTRATOR,
                    description=f"One of the {self.partitions} partitions of the users' commands and status reports "
                    "(`x-consistent-hash` on `x-user-id`), each driven by one replica at a time.",
                )
                for q in self.orchestrator_command_queues
            ),
            self._work_queue(
                self.orchestrator_activity, consumer=ORCHESTRATOR,
                description="Users' `session.active` reports: the idle clock.",
            ),
            self._work_queue(
                self.orchestrator_media, consumer=ORCHESTRATOR,
                description="Media files WAHA holds for a while (`media.available`), to copy into the media store.",
            ),
            self._work_queue(
                self.orchestrator_contacts, consumer=ORCHESTRATOR,
                description="People seen under a `@lid` (`contact.lid_seen`), whose phone number to ask WAHA.",
            ),
            self._work_queue(
                self.persister_events, consumer=PERSISTER,
                description="Every user's message events, to be stored, and every public event, to be numbered "
                "(`seq`) into the user's event stream.",
            ),
            self._work_queue(
                self.webhooks_stream, single_active=True, consumer=WEBHOOK_DISPATCHER,
                description="The stored events (with `seq`) of the users who have webhooks, in order, to be "
                "scheduled for delivery.",
            ),
        ]

    def queues(self) -> list[Queue]:
        work = self.work_queues()
        return [
            *work,
            *(Queue(self.dead_letter_queue(q.name), {"x-queue-type": "quorum"}) for q in work),
            self._query_queue(self.orchestrator_queries, ORCHESTRATOR, "Session queries: status and operators' reads."),
            self._query_queue(self.persister_queries, PERSISTER, "Chat, message and event stream queries."),
            self._query_queue(
                self.webhooks_requests, WEBHOOK_DISPATCHER, "Webhook subscriptions and their delivery logs."
            ),
            Queue(self.ingest_parked, {"x-queue-type": "quorum"}, description="Webhooks of sessions that are no user's."),
        ]

    def queue(self, name: str) -> Queue:
        """The declaration of the fixed queue `name` (one of `queues()`)."""
        for q in self.queues():
            if q.name == name:
                return q
        raise KeyError(f"no queue {name!r} in the topology of prefix {self.prefix!r}")

    def consumed_by(self, service: str) -> list[Queue]:
        """The fixed queues `service` consumes."""
        return [q for q in self.queues() if q.consumer == service]

    def dead_letter_queues(self, service: str | None = None) -> list[str]:
        """The dead-letter queues of the work queues (of those `service` consumes)."""
        return [self.dead_letter_queue(q.name) for q in self.work_queues() if service is None or q.consumer == service]

    def bindings(self) -> list[Binding]:
        b = [
            # Every command is a user's: it goes to the user's partition.
            *(
                Binding(self.commands, self.orchestrator_partition, f"user.*.{aggregate}.*", to_exchange=True)
                for aggregate in ("session", "message", "chat", "media")
            ),
            Binding(self.events, self.orchestrator_partition, "user.*.session.status_reported", to_exchange=True),
            # Consistent-hash bindings carry a weight, not a pattern.
            *(Binding(self.orchestrator_partition, q, "1") for q in self.orchestrator_command_queues),
            Binding(self.queries, self.orchestrator_queries, "user.*.session.get"),
            # Operators' reads: one user's record, and fleet-wide questions (`routing.admin_key`).
            Binding(self.queries, self.orchestrator_queries, "user.*.session.admin_get"),
            Binding(self.queries, self.orchestrator_queries, "system.admin.sessions.*"),
            # A user's messages are activity (reported by webhook-ingest, not one per message): they
            # keep the session from being stopped as idle.
            Binding(self.events, self.orchestrator_activity, "user.*.session.active"),
            Binding(self.events, self.orchestrator_media, "user.*.media.available"),
            Binding(self.events, self.orchestrator_contacts, "user.*.contact.lid_seen"),
            *(
                Binding(self.queries, self.persister_queries, f"user.*.{aggregate}.list")
                for aggregate in ("chat", "message", "group", "contact")
            ),
            Binding(self.queries, self.persister_queries, "user.*.media.get"),
            Binding(self.queries, self.persister_queries, "user.*.event.list"),
            Binding(self.queries, self.webhooks_requests, "user.*.webhook.*"),
            Binding(self.events, self.persister_events, "user.*.message.*"),
            Binding(self.events, self.persister_events, "user.*.chat.read"),
            # Session events are stored only in the event stream (the orchestrator owns the sessions).
            Binding(self.events, self.persister_events, "user.*.session.status_changed"),
            Binding(self.events, self.persister_events, "user.*.session.qr_updated"),
            # Names, pictures and participants of chats, and people's two ids (history import, group events).
            Binding(self.events, self.persister_events, "user.*.chat.updated"),
            Binding(self.events, self.persister_events, "user.*.contact.lids_mapped"),
            Binding(self.parked, self.ingest_parked, ""),
        ]
        b += [Binding(self.dlx, self.dead_letter_queue(q.name), q.name) for q in self.work_queues()]
        return b

    def retired_bindings(self) -> list[Binding]:
        """Bindings earlier versions declared and this one must not have: `declare_topology` removes
        them, so an upgraded broker routes like a new one (it only ever adds the others)."""
        return [
            # Before `session.active`, the idle clock took every message event (docs/sessions.md §5).
            Binding(self.events, self.orchestrator_activity, "user.*.message.received"),
            Binding(self.events, self.orchestrator_activity, "user.*.message.sent"),
            # Before reactions, edits and media, only sending was a message command.
            Binding(self.commands, self.orchestrator_partition, "user.*.message.send", to_exchange=True),
        ]


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    exchanges = {}
    for ex in topology.exchanges():
        exchanges[ex.name] = await channel.declare_exchange(ex.name, ex.type, durable=True, arguments=ex.arguments)
    for q in topology.queues():
        await channel.declare_queue(q.name, durable=True, arguments=q.arguments)
    for b in topology.bindings():
        await (await _destination(channel, b)).bind(exchanges[b.source], routing_key=b.routing_key)
    for b in topology.retired_bindings():
        # RabbitMQ answers unbind-ok for a binding that is not there (a broker that never had it).
        await (await _destination(channel, b)).unbind(exchanges[b.source], routing_key=b.routing_key)


async def _destination(channel: AbstractChannel, binding: Binding) -> AbstractQueue | AbstractExchange:
    """The queue or exchange a binding delivers to (declared already)."""
    if binding.to_exchange:
        return await channel.get_exchange(binding.destination, ensure=False)
    return await channel.get_queue(binding.destination, ensure=False)


async def declare_topology_at(url: str, topology: Topology) -> None:
    """Declare on a short-lived connection of its own (start-up, tests, the launcher)."""
    connection = await aio_pika.connect(url)
    async with connection:
        await declare_topology(await connection.channel(), topology)
