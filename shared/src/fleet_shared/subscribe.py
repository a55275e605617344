"""Subscribe to per-user events from another Python service, with typed envelopes.

    from fleet_shared.contracts.events import MessageReceived, MessageSent
    from fleet_shared.subscribe import subscribe

    async def on_event(env):                       # env: Envelope[MessageReceived | MessageSent]
        print(env.user_id, env.type, env.data.body)

    # One user's events, on a temporary queue that lives as long as the subscription:
    async with subscribe(url, topology, on_event, events=[MessageReceived, MessageSent], user_id="alice") as sub:
        await sub.wait()                           # until closed; raises SubscriptionLost if the broker went away

    # Every user's message events, on the service's own durable queue `<p>.sub.crm`:
    async with subscribe(url, topology, on_event, events=[MessageReceived], queue="crm"):
        ...

With `stored=True` the queue is bound to `<p>.stream` instead: the public events once the persister
stored them, each a `StoredEvent` with its per-user `seq` (resume after a loss with
`GET /api/v1/events?after=<last seq>`, or the `event.list` query).

Guarantees: events are handled one at a time, in the order the queue delivers them, and each is
acked only after `handler` returned. A body that is not a valid envelope of a subscribed type (or
of another user than `user_id`) is rejected without requeue. If `handler` raises, the event is
rejected: requeued on a durable queue (its delivery limit then dead-letters it to
`<p>.sub.<name>.dlq`), dropped on a temporary one. Handlers must be idempotent (a redelivered
event carries the same `id`).

`caught_up()` waits until every event that was in the queue when it was called has been handled
(a marker the subscription publishes to its own queue comes back after them; callers that ask at
once share one marker): what a read model needs to answer only what is at least as new as any
event published before the question.

A durable subscription survives broker reconnects (the robust connection re-consumes the queue,
nothing is lost while it is away). A temporary one ends when the connection is lost, so it never
skips events silently: `wait()` raises `SubscriptionLost` and the caller subscribes again (and
re-reads what it missed from the API). A durable queue keeps the bindings of earlier runs; events
of types no longer subscribed are acked and skipped; delete the queue to drop them for good.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from .contracts import Contract, Envelope
from .contracts.events import EVENT_TYPES
from .contracts.stream import STREAMED_TYPES
from .inbound import BadDelivery, is_replay, read_delivery, read_stored_delivery
from .topology import Topology, event_binding_keys, live_queue_arguments

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 16
# A marker of `caught_up`, published by the subscription to its own queue: the value is its number.
FENCE_HEADER = "x-fence"
# Markers of `caught_up` out at once. With one, a caller that came just after it left waited for it
# and then for a whole trip of its own (1.5 trips on average); with three, about 1.2.
FENCES_IN_FLIGHT = 3

Handler = Callable[[Envelope[Any]], Awaitable[None]]


class SubscriptionLost(Exception):
    """The broker connection of a temporary subscription was lost; events may have been missed."""


class Subscription:
    """One queue bound to `<p>.events`, consumed in order by `handler`. Use through `subscribe()`."""

    def __init__(
        self,
        connection: str | AbstractConnection,
        topology: Topology,
        handler: Handler,
        *,
        events: Iterable[type[Contract]] | None = None,
        user_id: str | None = None,
        queue: str | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        max_length: int | None = None,
        stored: bool = False,
    ) -> None:
        known = {t: m for t, m in EVENT_TYPES.items() if not stored or t in STREAMED_TYPES}
        models = list(events) if events is not None else list(known.values())
        unknown = [m for m in models if known.get(getattr(m, "TYPE", "")) is not m]
        if not models or unknown:
            what = "streamed event contracts" if stored else "event contracts of fleet_shared.contracts.events"
            raise ValueError(f"events must be {what}: {unknown or models}")
        self._stored = stored
        self._exchange = topology.stream if stored else topology.events
        if queue is not None:
            topology.subscriber_queue(queue)  # refuses a name that is not one
        self._types = frozenset(m.TYPE for m in models)
        self._binding_keys = event_binding_keys(sorted(self._types), user_id)
        self._connection_or_url = connection
        self._topology = topology
        self._handler = handler
        self._user_id = user_id
        self._durable_name = queue
        self._prefetch = prefetch
        self._max_length = max_length
        self._own_connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._done: asyncio.Future[None] | None = None
        self._lost = False
        self._fences: dict[int, asyncio.Future[None]] = {}  # published, not back yet
        self._gathering: asyncio.Future[None] | None = None  # callers waiting for the next marker
        self._fence_count = 0
        self._fence_tasks: set[asyncio.Task] = set()

    @property
    def durable(self) -> bool:
        return self._durable_name is not None

    @property
    def active(self) -> bool:
        """Started, and neither closed nor lost."""
        return self._queue is not None and self._done is not None and not self._done.done()

    @property
    def queue_name(self) -> str:
        if self._queue is None:
            raise RuntimeError("the subscription has not started")
        return self._queue.name

    @property
    def binding_keys(self) -> list[str]:
        return list(self._binding_keys)

    async def start(self) -> "Subscription":
        self._done = asyncio.get_running_loop().create_future()
        connection = self._connection_or_url
        if isinstance(connection, str):
            connection = self._own_connection = await aio_pika.connect_robust(
                connection, client_properties={"connection_name": f"subscriber:{self._durable_name or 'temporary'}"}
            )
        try:
            self._channel = await connection.channel()
            await self._channel.set_qos(prefetch_count=self._prefetch)
            self._queue = await self._declare(self._channel)
            if not self.durable:
                self._channel.close_callbacks.add(self._on_channel_closed)
            self._worker = asyncio.create_task(self._work(), name=f"subscription:{self._queue.name}")
            self._consumer_tag = await self._queue.consume(self._inbox.put)
        except BaseException:
            await self.close()
            raise
        log.info("subscribed %s to %s", self._queue.name, ", ".join(self._binding_keys))
        return self

    async def _declare(self, channel: AbstractChannel) -> AbstractQueue:
        needed = {self._exchange, self._topology.dlx}
        exchanges = {}
        for ex in self._topology.exchanges():
            if ex.name in needed:
                exchanges[ex.name] = await channel.declare_exchange(
                    ex.name, ex.type, durable=True, arguments=ex.arguments
                )
        if self._durable_name is not None:
            queues, bindings = self._topology.subscriber_declarations(self._durable_name)
            declared = {q.name: await channel.declare_queue(q.name, durable=True, arguments=q.arguments) for q in queues}
            for b in bindings:
                await declared[b.destination].bind(exchanges[b.source], routing_key=b.routing_key)
            queue = declared[queues[0].name]
        else:
            arguments = live_queue_arguments(self._max_length) if self._max_length else live_queue_arguments()
            # Server-named (`amq.gen-…`), declared on the underlying channel: aio-pika's robust channel
            # would name it itself and declare it again after a reconnect, and a temporary queue must
            # not outlive its connection (see `SubscriptionLost`).
            underlay = await channel.get_underlay_channel()
            named = await underlay.queue_declare("", exclusive=True, auto_delete=True, durable=False, arguments=arguments)
            assert named.queue is not None  # Queue.DeclareOk always carries the name the broker gave it
            queue = await channel.get_queue(named.queue, ensure=False)
        for key in self._binding_keys:
            await queue.bind(exchanges[self._exchange], routing_key=key)
        return queue

    def _on_channel_closed(self, _: object, exc: BaseException | None = None) -> None:
        if self._done is not None and not self._done.done():
            self._lost = True
            log.warning("temporary subscription %s lost its channel: %r", self._queue.name if self._queue else "?", exc)
            self._done.set_exception(SubscriptionLost(f"broker connection lost: {exc!r}"))
            self._fail_fences()
            if self._worker is not None:
                self._worker.cancel()

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            if message.channel.is_closed:
                continue  # delivered on a channel that is gone: the broker delivers it again
            await self._deliver(message)

    async def caught_up(self) -> None:
        """Until every event in the queue at the time of the call has been handled (see the module).
        Raises AMQPError, ChannelInvalidStateError or SubscriptionLost when that cannot be known.

        Callers that ask in the same turn of the event loop share one marker; at most
        FENCES_IN_FLIGHT are out at once, and callers that ask while they all are wait for the next
        one, sent when one comes back: under load each marker answers everyone who asked meanwhile."""
        if not self.active:
            raise SubscriptionLost("the subscription is not running")
        if self._gathering is None:
            self._gathering = asyncio.get_running_loop().create_future()
            if len(self._fences) < FENCES_IN_FLIGHT:
                asyncio.get_running_loop().call_soon(self._publish_fence)
        await asyncio.shield(self._gathering)

    def _publish_fence(self) -> None:
        waiting, self._gathering = self._gathering, None
        if waiting is None:
            return
        self._fence_count += 1
        number = self._fence_count
        self._fences[number] = waiting
        task = asyncio.get_running_loop().create_task(self._send_fence(number, waiting))
        self._fence_tasks.add(task)
        task.add_done_callback(self._fence_tasks.discard)

    def _next_fence(self) -> None:
        if self._gathering is not None and len(self._fences) < FENCES_IN_FLIGHT:
            self._publish_fence()

    async def _send_fence(self, number: int, waiting: "asyncio.Future[None]") -> None:
        try:
            if self._channel is None or self._queue is None:
                raise ChannelInvalidStateError("the subscription has not started")
            marker = aio_pika.Message(b"", headers={FENCE_HEADER: number}, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
            await self._channel.default_exchange.publish(marker, routing_key=self._queue.name)
        except (AMQPError, ChannelInvalidStateError, ConnectionError) as exc:
            self._fences.pop(number, None)
            if not waiting.done():
                waiting.set_exception(exc)
                waiting.exception()  # retrieved here: its callers get it through their shield
            self._next_fence()

    def _fence_back(self, message: AbstractIncomingMessage) -> bool:
        """A marker of `caught_up` came back: everything before it was handled."""
        number = (message.headers or {}).get(FENCE_HEADER)
        if not isinstance(number, int):
            return False
        waiting = self._fences.pop(number, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
        self._next_fence()
        return True

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        if self._fence_back(message):
            await _settle(message.ack())
            return
        try:
            read = read_stored_delivery if self._stored else read_delivery
            env = read(message.body, message.routing_key, types=EVENT_TYPES, replays=is_replay(message.headers))
            if self._user_id is not None and env.user_id != self._user_id:
                raise BadDelivery(f"an event of user {env.user_id!r}, not of {self._user_id!r}")
        except BadDelivery as exc:
            log.warning("rejecting %s on %s: %s", message.message_id, message.routing_key, exc)
            await _settle(message.reject(requeue=False))
            return
        if env.type not in self._types:
            log.debug("skipping %s: %s is not subscribed (binding of an earlier run?)", env.id, env.type)
            await _settle(message.ack())
            return
        try:
            await self._handler(env)
        except Exception:  # whatever the handler failed with, the delivery must be settled
            log.exception("handler failed on %s %s", env.type, env.id)
            await _settle(message.reject(requeue=self.durable))
            return
        await _settle(message.ack())

    async def wait(self) -> None:
        """Until `close()`; raises `SubscriptionLost` when a temporary subscription lost the broker."""
        if self._done is None:
            raise RuntimeError("the subscription has not started")
        await asyncio.shield(self._done)

    def _fail_fences(self) -> None:
        for waiting in [*self._fences.values(), *([self._gathering] if self._gathering else [])]:
            if not waiting.done():
                waiting.set_exception(SubscriptionLost("the subscription ended"))
                waiting.exception()  # retrieved here: its waiters get it through the shield
        self._fences.clear()
        self._gathering = None

    async def close(self) -> None:
        """Stop consuming and, for a temporary subscription, delete the queue. Idempotent."""
        self._fail_fences()
        if self._done is not None:
            if not self._done.done():
                self._done.set_result(None)
            elif not self._done.cancelled():
                self._done.exception()  # retrieved: closing is how a lost subscription is handled
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        channel = self._channel
        if channel is not None and self._lost:
            # The broker already dropped the consumer and the exclusive queue with the connection;
            # closing marks the channel closed so a robust connection does not reopen it.
            await channel.close()
        elif channel is not None and not channel.is_closed:
            if self._queue is not None and self._consumer_tag is not None:
                await self._queue.cancel(self._consumer_tag)
                if not self.durable:
                    await self._queue.delete(if_unused=False, if_empty=False)
            await channel.close()
        if self._own_connection is not None:
            await self._own_connection.close()

    async def __aenter__(self) -> "Subscription":
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _settle(action: Awaitable[None]) -> None:
    """Ack or reject; when the channel went away meanwhile the broker redelivers, so there is nothing to do."""
    try:
        await action
    except (ChannelInvalidStateError, AMQPError) as exc:
        log.info("could not settle a delivery (channel gone, it will be redelivered): %r", exc)


def subscribe(
    connection: str | AbstractConnection,
    topology: Topology,
    handler: Handler,
    *,
    events: Iterable[type[Contract]] | None = None,
    user_id: str | None = None,
    queue: str | None = None,
    prefetch: int = DEFAULT_PREFETCH,
    max_length: int | None = None,
    stored: bool = False,
) -> Subscription:
    """A subscription to `events` (default: every event type) of `user_id` (default: every user).

    `connection`: an AMQP URL (the subscription opens and closes a robust connection of its own) or
    an open aio-pika connection to share. `queue`: a name for the service's durable queue
    `<p>.sub.<queue>`; `None` makes a temporary queue (server-named, exclusive, auto-delete, at most
    `max_length` events, oldest dropped first). `handler` gets each `Envelope[<event model>]`.
    `stored`: the events of `<p>.stream` (`StoredEvent`s, with their `seq`) instead of `<p>.events`.
    Use as `async with subscribe(...) as sub:`, or `await subscribe(...).start()` and `close()`.
    """
    return Subscription(
        connection, topology, handler, events=events, user_id=user_id, queue=queue, prefetch=prefetch,
        max_length=max_length, stored=stored,
    )
