"""Each gateway process's read model of its users' statuses: `GET /api/v1/waha/status` answered
without a round trip to the orchestrator (and its database) while nothing changed.

What is kept: the orchestrator's whole answer to `session.get`, per user (at most `max_users`, the
least recently read forgotten first), for at most `ttl`; not while the user's history import
runs (its counts move with no event to say so). What makes it go: a
`session.status_changed` event of the user (one temporary subscription per gateway process,
every user's), and any command of the user through this gateway (it moves
`lastActivity`); the next read asks the orchestrator again. A user read often is asked again in
the background once their kept answer is `REFRESH_AFTER` of `ttl` old, and reads go on being
answered from what is kept meanwhile: otherwise every user's read would wait for the orchestrator
once per `ttl`, and under load those reads (hundreds of ms each) were the slowest 1 %. A read
with nothing kept while another read of the user asks waits for that answer, then is answered as
reads of what is kept are (below), or asks itself if it was not kept: so users who all start
reading at once make one ask each, not one per read until the first answer is back.

Never stale after a change was confirmed: the orchestrator writes a change and publishes its
event before anyone hears of it (a command's reply, a live event, a webhook). A read served from
here first waits until the subscription has handled every event already in its queue
(`Subscription.caught_up`), so it sees every change confirmed before it arrived, whichever
gateway confirmed it. An answer from the orchestrator is kept only if no event or command of the
user came in while it was asked for. While the subscription is down (or slower than
`FENCE_TIMEOUT`), nothing is kept and every read asks the orchestrator, and whatever was kept is
dropped (events may have been missed). `ttl` bounds how far `lastActivity` may lag behind commands
made through other gateway processes; it is shorter than the queue's message TTL, so an event
dropped there never leaves an entry older than itself.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args

from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.commands import SessionView
from fleet_shared.contracts.events import SessionStatus, SessionStatusChanged
from fleet_shared.http import ApiError
from fleet_shared.subscribe import Subscription, SubscriptionLost, subscribe
from fleet_shared.topology import Topology

log = logging.getLogger(__name__)

FENCE_TIMEOUT = 1.0  # seconds: a subscription further behind than this is treated as down
RESUBSCRIBE_DELAY = 1.0
MAX_USERS = 100_000
# Events a slow read model may have waiting before the oldest are dropped (then FENCE_TIMEOUT has long fired).
QUEUE_MAX_LENGTH = 100_000
PREFETCH = 256
# How old (a fraction of `ttl`) a kept answer is when a read of it asks the orchestrator again in the
# background: the rest of `ttl` is the time the new answer has to come before reads wait for one.
REFRESH_AFTER = 0.7

STATUSES = frozenset(get_args(SessionStatus))


@dataclass(frozen=True)
class Kept:
    view: SessionView
    body: bytes  # the view as the API answers it (JSON, camelCase), encoded once
    at: float


def encoded(view: SessionView) -> bytes:
    return view.model_dump_json(by_alias=True).encode()


class StatusReadModel:
    def __init__(
        self, url: str, topology: Topology, *, ttl: float, max_users: int = MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._topology = topology
        self._ttl = ttl
        self._max_users = max_users
        self._clock = clock
        self._entries: OrderedDict[str, Kept] = OrderedDict()
        # The last change (a counter) of each user recently changed; changes older than `_floor`
        # are forgotten, so an answer asked for before `_floor` is never kept.
        self._changes: OrderedDict[str, int] = OrderedDict()
        self._counter = 0
        self._floor = 0
        # userId -> the status a session command's reply through this process gave, shown until a
        # newer `session.status_changed` of the user (the registry's word after it) arrives.
        self._confirmed: OrderedDict[str, str] = OrderedDict()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self._refreshing: dict[str, asyncio.Task] = {}  # userId -> its answer asked again in the background
        self._asking: dict[str, asyncio.Future[None]] = {}  # userId -> done when its latest ask is answered

    @property
    def serving(self) -> bool:
        return self._ttl > 0 and self._subscription is not None and self._subscription.active

    def start(self) -> None:
        if self._ttl > 0 and self._task is None:
            self._task = asyncio.create_task(self._subscribed(), name="status-read-model")

    async def close(self) -> None:
        refreshes = list(self._refreshing.values())
        for refresh in refreshes:
            refresh.cancel()
        await asyncio.gather(*refreshes, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _subscribed(self) -> None:
        """Keep one subscription; between two, nothing is kept."""
        while True:
            subscription = subscribe(
                self._url, self._topology, self._on_event, events=[SessionStatusChanged],
                prefetch=PREFETCH, max_length=QUEUE_MAX_LENGTH,
            )
            try:
                await subscription.start()
                self._forget_all()  # what was kept before may have missed events
                self._subscription = subscription
                await subscription.wait()
            except (SubscriptionLost, AMQPError, ConnectionError, OSError) as exc:
                log.warning("status read model: subscription lost (%r); reads go to the orchestrator", exc)
            finally:
                self._subscription = None
                self._forget_all()
                await subscription.close()
            await asyncio.sleep(RESUBSCRIBE_DELAY)

    async def _on_event(self, env: Envelope) -> None:
        self._confirmed.pop(env.user_id, None)  # the registry's word, newer than any reply before it
        self.changed(env.user_id)

    async def confirmed(self, user_id: str, status: str) -> None:
        """A session command through this process answered `status` (start, stop, restart, logout):
        this process's reads show it until the user's next `session.status_changed`, newer than the
        reply (every event before it is handled first), brings the registry's word."""
        self.changed(user_id)
        if status not in STATUSES or not await self._caught_up():
            return
        self._confirmed[user_id] = status
        self._confirmed.move_to_end(user_id)
        if len(self._confirmed) > self._max_users:
            self._confirmed.popitem(last=False)

    async def _caught_up(self) -> bool:
        """Every event in the subscription's queue handled; False (and everything forgotten) when
        the subscription is down or further behind than FENCE_TIMEOUT."""
        if not self.serving:
            return False
        try:
            assert self._subscription is not None
            async with asyncio.timeout(FENCE_TIMEOUT):
                await self._subscription.caught_up()
        except (TimeoutError, SubscriptionLost, AMQPError, ChannelInvalidStateError, ConnectionError) as exc:
            log.warning("status read model behind or down (%r): forgetting what it kept, subscribing again", exc)
            self._forget_all()
            if self._subscription is not None:  # `_subscribed` then starts a new one (a marker may be lost)
                closing = asyncio.create_task(self._subscription.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            return False
        return True

    def _shown(self, user_id: str, kept: Kept) -> bytes:
        status = self._confirmed.get(user_id)
        if status is None or status == kept.view.status:
            return kept.body
        return encoded(kept.view.model_copy(update={"status": status}))

    def changed(self, user_id: str) -> None:
        """The user's status may have changed: forget it, and do not keep an answer asked for before now."""
        self._counter += 1
        self._entries.pop(user_id, None)
        self._changes[user_id] = self._counter
        self._changes.move_to_end(user_id)
        if len(self._changes) > self._max_users:
            _, forgotten = self._changes.popitem(last=False)
            self._floor = max(self._floor, forgotten)

    def _forget_all(self) -> None:
        self._counter += 1
        self._floor = self._counter
        self._entries.clear()
        self._changes.clear()
        self._confirmed.clear()

    async def status(self, user_id: str, ask: Callable[[], Awaitable[SessionView]]) -> bytes:
        """The user's status as the API answers it: kept, if still current, else `ask()`ed of the
        orchestrator (and kept)."""
        kept = self._current(user_id)
        if kept is None and self.serving and (asking := self._asking.get(user_id)) is not None:
            await asyncio.shield(asking)  # its answer, if kept, is as new as any, once caught up below
            kept = self._current(user_id)
        if kept is None:
            return await self._asked(user_id, ask)
        if not await self._caught_up():
            return encoded(await ask())
        kept = self._entries.get(user_id)  # an event handled meanwhile may have dropped it
        if kept is None:
            return await self._asked(user_id, ask)
        self._entries.move_to_end(user_id)
        if self._clock() - kept.at >= self._ttl * REFRESH_AFTER and user_id not in self._refreshing:
            self._refresh(user_id, kept, ask)
        return self._shown(user_id, kept)

    def _current(self, user_id: str) -> Kept | None:
        kept = self._entries.get(user_id)
        if not self.serving or kept is None or self._clock() - kept.at >= self._ttl:
            return None
        return kept

    def _refresh(self, user_id: str, kept: Kept, ask: Callable[[], Awaitable[SessionView]]) -> None:
        """Ask for the user's answer again in the background (kept as any answer is: `_asked`)."""
        task = asyncio.create_task(self._asked(user_id, ask), name=f"status-refresh:{user_id}")
        self._refreshing[user_id] = task
        task.add_done_callback(lambda done: self._refreshed(user_id, kept, done))

    def _refreshed(self, user_id: str, old: Kept, task: asyncio.Task) -> None:
        self._refreshing.pop(user_id, None)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        # Failed (429, 502, 503, 504 or worse): the old answer is dropped rather than asked for again
        # by every read until it expires; the next read asks, as it would have then.
        if self._entries.get(user_id) is old:
            del self._entries[user_id]
        if isinstance(exc, ApiError):
            log.info("status read model: asking %s's status again failed: %s %s", user_id, exc.status, exc.code)
        else:
            log.error("status read model: asking %s's status again failed", user_id, exc_info=exc)

    async def _asked(self, user_id: str, ask: Callable[[], Awaitable[SessionView]]) -> bytes:
        asked_at, at = self._counter, self._clock()
        self._asking[user_id] = answered = asyncio.get_running_loop().create_future()
        try:
            kept = Kept(view := await ask(), encoded(view), at)
        finally:
            answered.set_result(None)
            if self._asking.get(user_id) is answered:
                del self._asking[user_id]
        if (
            self.serving and asked_at >= self._floor and self._changes.get(user_id, 0) <= asked_at
            # A running history import counts up with no event to say so: asked again each time.
            and view.history_import.state != "running"
        ):
            self._entries[user_id] = kept
            self._entries.move_to_end(user_id)
            if len(self._entries) > self._max_users:
                self._entries.popitem(last=False)
        return self._shown(user_id, kept)
