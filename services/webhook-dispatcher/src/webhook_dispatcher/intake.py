"""From the event stream to pending deliveries (docs/reliability.md, "Webhook deliveries").

`<p>.webhooks.stream` is consumed by one dispatcher at a time (single active consumer), one event
after the other. For each stored event of a user, every subscription of theirs whose filter takes
it gets a pending delivery (idempotent: keyed by subscription and `seq`), then the user's cursor
moves to its `seq`, and only then is the event acked: a crash anywhere in between redelivers it
and schedules nothing twice. An event at or below the cursor was scheduled already. An event past
`cursor + 1` means the stream skipped some (published out of order by two persisters): they are
read from the persister (`event.list`) and scheduled first, so every subscription sees every
`seq` in order. A user's cursor starts at their stream's head when their first webhook is made
(`start_at`), not at the first event that comes: that one may have overtaken earlier ones.

The cursors are kept in memory (this process is the stream's one consumer) and written to MongoDB
every `CURSOR_FLUSH`: one write per event fewer on the hot path. A crash may lose the last second
of cursor moves, which only costs work, never an event: the next event of such a user looks like
a hole, the events behind it are read from the persister and scheduled again, and their
deliveries exist already (same `_id`), so nothing is delivered twice for it.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

from fleet_shared.contracts.stream import MAX_EVENT_PAGE, EventPage, ListEvents, StoredEvent, parse_stored_event
from fleet_shared.contracts.webhooks import matches

from .delivery import Dispatcher
from .metrics import GAPS_FILLED, SCHEDULED
from .store import Store

log = logging.getLogger(__name__)

CURSOR_FLUSH = 1.0

# Asks the persister for one page of a user's stream (`event.list`); raises `EventsUnavailable`.
AskEvents = Callable[[str, ListEvents], Awaitable[EventPage]]


class EventsUnavailable(Exception):
    """The persister did not answer `event.list`."""


class Intake:
    def __init__(self, store: Store, dispatcher: Dispatcher, ask_events: AskEvents) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.ask_events = ask_events
        # The cursors this process moved (it is the stream's one consumer): read from MongoDB once.
        self._cursors: dict[str, int] = {}
        self._unwritten: dict[str, int] = {}  # moved since the last flush
        self._flusher: asyncio.Task | None = None

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_every(CURSOR_FLUSH), name="webhook-cursors")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.flush()
            except PyMongoError as exc:
                log.warning("could not write the intake cursors (kept for the next try): %r", exc)

    async def flush(self) -> None:
        moved, self._unwritten = self._unwritten, {}
        try:
            await self.store.advance(moved)
        except BaseException:
            for user, seq in moved.items():  # kept for the next flush
                self._unwritten[user] = max(seq, self._unwritten.get(user, 0))
            raise

    async def start_at(self, user: str) -> None:
        """Begin the user's cursor at their stream's head, unless it is further on already."""
        head = (await self.ask_events(user, ListEvents(limit=1))).last
        cursor = self._cursors.get(user)
        if cursor is None:
            cursor = await self.store.cursor(user)
        if cursor is None or cursor < head:
            await self.store.advance({user: head})
            self._move(user, head)

    def _move(self, user: str, seq: int) -> None:
        seq = max(seq, self._cursors.get(user, 0))
        self._cursors[user] = self._unwritten[user] = seq

    async def take(self, event: StoredEvent) -> None:
        user = event.user_id
        cursor = self._cursors.get(user)
        if cursor is None:
            cursor = await self.store.cursor(user)
        if cursor is not None and event.seq <= cursor:
            return  # scheduled already (a redelivery, or filled in from the store)
        events = [event]
        if cursor is not None and event.seq > cursor + 1:
            events = [*await self._missing(user, cursor, event.seq - 1), event]
        subs = self.dispatcher.subscriptions(user)
        rows = [
            (sub, e.seq, e.id, e.type, _body(e), e.occurred_at)
            for e in events
            for sub in subs
            if matches(sub.events, e.type)
        ]
        SCHEDULED.inc(await self.store.schedule(rows))
        self._move(user, event.seq)
        for sub in subs:
            self.dispatcher.wake(sub.id)

    async def _missing(self, user: str, after: int, until: int) -> list[StoredEvent]:
        missing: list[StoredEvent] = []
        while after < until:
            page = await self.ask_events(user, ListEvents(after=after, limit=MAX_EVENT_PAGE))
            fresh = [parse_stored_event(item) for item in page.items if item["seq"] <= until]
            if not fresh:
                break  # expired meanwhile: nothing left to fill in
            missing += fresh
            after = fresh[-1].seq
        GAPS_FILLED.inc(len(missing))
        log.info("filled %d event(s) of %s missing from the stream", len(missing), user)
        return missing


def _body(event: StoredEvent) -> bytes:
    """What a receiver gets: the stored event (envelope and `seq`) as compact JSON."""
    return json.dumps(event.wire(), separators=(",", ":")).encode()
