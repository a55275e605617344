"""The user's event stream: every public event stored once with its per-user `seq` (docs/reliability.md).

`events`: one document per (userId, eventId = the envelope's id) and per (userId, seq), both unique;
removed `EVENT_RETENTION` after it was stored (TTL index on `storedAt`). `event_counters`: per user,
the highest `seq` handed out, so numbering goes on after every stored event has expired.

There is no separate counter to increment and then use: an event's `seq` is taken by inserting
it. The next number is one past the counter (which only ever records numbers already inserted),
and the insert fails on the unique `(userId, seq)` index if that number is taken (another writer,
or a counter a crash left behind); the writer then reads the highest stored `seq` and renumbers
what is left. So:

- **assigned once**: an event whose envelope id is stored already keeps the `seq` it has (the
  unique `(userId, eventId)` index refuses a second copy, and the writer reads it); a crash before the
  insert leaves no number behind, one after it leaves the event stored, found by the redelivery;
- **no holes, in commit order**: `seq` n+1 can only be inserted once n is stored (it is computed
  from n), so a reader who saw n+1 will always find n, whatever the number of persisters.

Within one process the writes of one user are serialised (`KeyedLock`), so renumbering only
happens between replicas; a whole batch, of many users, is three operations. A page re-reads once when it finds a hole (an event committed while the
read passed its place, or the oldest expired): that second read began after everything the first
one saw was committed, and nothing is numbered below a committed `seq` later.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from fleet_shared.contracts import Envelope, utcnow
from fleet_shared.contracts.stream import StoredEvent, stored_event_type

from .paging import PAGE_BATCH, json_size
from .recent import Recent
from .store import DUPLICATE_KEY, StoreUnavailable, is_transient

EVENTS = "events"
COUNTERS = "event_counters"
# Renumbering rounds one append may take while other writers keep taking the numbers it wanted.
MAX_ROUNDS = 50
INDEX_OPTIONS_CONFLICT = (85, 86)
DEFAULT_RETENTION = timedelta(days=7)
# Publishes the events once stored with their `seq` (on `<p>.stream`); raises `BrokerUnavailable`.
PublishStored = Callable[[Sequence[StoredEvent]], Awaitable[None]]


def event_indexes(retention: timedelta) -> list[IndexModel]:
    return [
        IndexModel([("userId", ASCENDING), ("seq", ASCENDING)], unique=True, name="user_seq_unique"),
        IndexModel([("userId", ASCENDING), ("eventId", ASCENDING)], unique=True, name="user_event_unique"),
        IndexModel([("storedAt", ASCENDING)], expireAfterSeconds=int(retention.total_seconds()), name="retention"),
    ]


class KeyedLock:
    """One asyncio lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def as_stored(env: Envelope, seq: int) -> StoredEvent:
    """`env` with its `seq` (built without validating again: `env` is valid)."""
    fields = {name: getattr(env, name) for name in Envelope.model_fields}
    return stored_event_type(type(env.data)).model_construct(**fields, seq=seq)


class EventLog:
    def __init__(self, db: AsyncDatabase, retention: timedelta = DEFAULT_RETENTION, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.retention = retention
        self.clock = clock
        self._locks = KeyedLock()
        # The `seq`s this process stored or found a moment ago, by (userId, eventId): an event coming
        # again (`recent.py`) keeps its number without a command.
        self._numbered: Recent[tuple[str, str], int] = Recent()

    @property
    def events(self) -> AsyncCollection:
        return self.db[EVENTS]

    @property
    def counters(self) -> AsyncCollection:
        return self.db[COUNTERS]

    async def ensure_indexes(self) -> None:
        try:
            await self.events.create_indexes(event_indexes(self.retention))
        except OperationFailure as exc:
            if exc.code not in INDEX_OPTIONS_CONFLICT:
                raise
            # EVENT_RETENTION changed: the TTL index takes the new one in place.
            await self.db.command(
                "collMod", EVENTS,
                index={"name": "retention", "expireAfterSeconds": int(self.retention.total_seconds())},
            )

    async def append(self, events: Sequence[Envelope], then: PublishStored | None = None) -> list[StoredEvent]:
        """Store `events` in their users' streams (each user's in the given order); answer them with
        their `seq`, the one they already had for those stored before. `then` (publishing them) gets
        them, each user's by `seq`, while their users' streams are still held: so this process hands
        each user's events on in `seq` order, also when several batches of theirs are written at once."""
        by_user: dict[str, list[Envelope]] = {}
        for env in events:
            by_user.setdefault(env.user_id, []).append(env)
        async with contextlib.AsyncExitStack() as held:
            for user in sorted(by_user):  # always in one order: two batches never wait for each other in a circle
                await held.enter_async_context(self._locks.hold(user))
            try:
                seqs = await self._append(by_user)
            except PyMongoError as exc:
                if is_transient(exc):
                    raise StoreUnavailable(str(exc)) from exc
                raise
            stored = [as_stored(env, seqs[(env.user_id, env.id)]) for env in events]
            if then is not None and stored:
                await then(sorted(stored, key=lambda e: e.seq))
        return stored

    async def _append(self, by_user: dict[str, list[Envelope]]) -> dict[tuple[str, str], int]:
        """The whole batch in three operations in the common case: every user's counter (one read),
        every event (one ordered insert: each user's events in order, so what an error leaves
        inserted is a prefix of each user's), every counter again (one bulk write). Only an insert
        that meets an existing event (a redelivery) or a taken number (another writer, or a counter
        a crash left behind) reads which, and that user's highest stored `seq`. An event numbered
        a moment ago takes no operation, and a counter that already holds a user's highest `seq`
        is not written again. The caller holds the users' streams."""
        # The first copy of each id, in order.
        unique = {user: list({e.id: e for e in reversed(envs)}.values())[::-1] for user, envs in by_user.items()}
        seqs: dict[tuple[str, str], int] = {}
        for user, envs in unique.items():
            for env in envs:
                known = self._numbered.get((user, env.id))
                if known is not None:
                    seqs[(user, env.id)] = known
        counted: dict[str, int] = {}  # the counters as read
        exact: set[str] = set()
        for _ in range(MAX_ROUNDS):
            todo = {u: [e for e in envs if (u, e.id) not in seqs] for u, envs in unique.items()}
            todo = {u: envs for u, envs in todo.items() if envs}
            if not todo:
                break
            lasts = await self._counters([u for u in todo if u not in exact])
            counted.update(lasts)
            for user in exact & todo.keys():
                lasts[user] = await self.last_seq(user)
            now = self.clock()
            docs = [self._doc(env, lasts[u] + 1 + i, now) for u, envs in todo.items() for i, env in enumerate(envs)]
            stored_event = False
            try:
                await self.events.insert_many(docs, ordered=True)
                inserted = len(docs)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                inserted = exc.details.get("nInserted", 0)
                # The event itself is stored (a redelivery), not its number taken: the counter holds.
                stored_event = bool(errors) and "eventId" in (errors[0].get("keyPattern") or {})
            seqs.update(((d["userId"], d["eventId"]), d["seq"]) for d in docs[:inserted])
            if inserted < len(docs):
                if not stored_event:
                    exact.add(docs[inserted]["userId"])
                await self._stored_already(docs[inserted:], seqs)
        else:
            raise StoreUnavailable("could not number the events: other writers kept taking the numbers")
        highest: dict[str, int] = {}
        for (user, _), seq in seqs.items():
            highest[user] = max(seq, highest.get(user, 0))
        # A user whose counter was not read had every event numbered a moment ago: counted already.
        behind = {u: seq for u, seq in highest.items() if u in counted and seq > counted[u]}
        if behind:
            await self.counters.bulk_write(
                [UpdateOne({"_id": u}, {"$max": {"seq": seq}}, upsert=True) for u, seq in behind.items()],
                ordered=False,
            )
        for key, seq in seqs.items():
            self._numbered.put(key, seq)
        return seqs

    async def _stored_already(self, docs: list[dict[str, Any]], seqs: dict[tuple[str, str], int]) -> None:
        """Add the `seq`s of those of `docs` whose event is stored (they keep theirs): one query."""
        wanted = {(d["userId"], d["eventId"]) for d in docs}
        found = self.events.find(
            {"userId": {"$in": sorted({u for u, _ in wanted})}, "eventId": {"$in": sorted({e for _, e in wanted})}},
            {"_id": 0, "userId": 1, "eventId": 1, "seq": 1},
        )
        async for doc in found:
            if (doc["userId"], doc["eventId"]) in wanted:
                seqs[(doc["userId"], doc["eventId"])] = doc["seq"]

    async def _counters(self, users: list[str]) -> dict[str, int]:
        found = {u: 0 for u in users}
        if users:
            async for doc in self.counters.find({"_id": {"$in": users}}):
                found[doc["_id"]] = doc["seq"]
        return found

    async def _counter(self, user_id: str) -> int:
        return (await self._counters([user_id]))[user_id]

    @staticmethod
    def _doc(env: Envelope, seq: int, now: datetime) -> dict[str, Any]:
        return {
            "userId": env.user_id, "eventId": env.id, "seq": seq, "type": env.type, "storedAt": now, "event": env.wire(),
        }

    async def last_seq(self, user_id: str) -> int:
        """The highest `seq` the user's stream has handed out (0: none yet)."""
        newest = await self.events.find_one({"userId": user_id}, {"_id": 0, "seq": 1}, sort=[("seq", DESCENDING)])
        return max(newest["seq"] if newest else 0, await self._counter(user_id))

    async def page(self, user_id: str, after: int, limit: int, max_bytes: int) -> list[dict[str, Any]]:
        """The user's stored events with `seq` > `after`, oldest first: at most `limit`, at most about
        `max_bytes` (at least one), never past a hole (see the module)."""
        first = await self._read(user_id, after, limit, max_bytes)
        if _contiguous(after, first):
            return first
        second = await self._read(user_id, after, limit, max_bytes)
        seen = first[-1]["seq"]
        kept = [e for e in second if e["seq"] <= seen]
        for event in second[len(kept):]:  # past what the first read saw, only without a hole
            if event["seq"] != (kept[-1]["seq"] if kept else after) + 1:
                break
            kept.append(event)
        return kept

    async def _read(self, user_id: str, after: int, limit: int, max_bytes: int) -> list[dict[str, Any]]:
        found = (
            self.events.find({"userId": user_id, "seq": {"$gt": after}}, {"_id": 0, "seq": 1, "event": 1})
            .sort([("seq", ASCENDING)])
            .limit(limit)
            .batch_size(PAGE_BATCH)
        )
        items: list[dict[str, Any]] = []
        size = 0
        async with found:
            async for doc in found:
                item = {**doc["event"], "seq": doc["seq"]}
                cost = json_size(item)
                if items and size + cost > max_bytes:
                    break
                items.append(item)
                size += cost
        return items


def _contiguous(after: int, items: list[dict[str, Any]]) -> bool:
    return all(item["seq"] == after + 1 + i for i, item in enumerate(items))
