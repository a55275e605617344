"""MongoDB side of the persister: the two collections, their indexes and idempotent batch writes.

What each event writes is built in `writes.py`; here a batch becomes one unordered bulk write per
collection. `messages`: one document per (userId, WhatsApp message id); `chats`: one document per
(userId, chatId) with the newest message as `lastMessage`, and how many messages the user has not
read. Both converge on the same documents whatever order the events arrive in, and a replay
changes nothing: so a message or ack this process stored a moment ago, coming again (WAHA's
`message.any` of a sent message, a retried webhook), is not written again (`recent.py`).
"""

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from fleet_shared.contracts import Envelope, utcnow
from fleet_shared.contracts.events import ChatRead, ChatUpdated, ContactLidsMapped, Message, MessageAck, MessageImported

from .recent import Recent
from .writes import (
    MESSAGE_FACTS,
    chat_info,
    chat_read,
    chat_update,
    lid_mappings,
    message_insert,
    message_order,
    message_update,
)

log = logging.getLogger(__name__)

MESSAGES = "messages"
CHATS = "chats"
LIDS = "lids"  # people's two ids: {userId, lid, phone}
DUPLICATE_KEY = 11000
# Server answers that mean "try again later", not "this write is wrong".
_TRANSIENT_CODES = {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

MESSAGE_INDEXES = [
    IndexModel([("userId", ASCENDING), ("id", ASCENDING)], unique=True, name="user_message_unique"),
    # Newest first by `sortMs` (the second, then the arrival within it), then the id.
    IndexModel(
        [("userId", ASCENDING), ("chatId", ASCENDING), ("sortMs", DESCENDING), ("id", DESCENDING)],
        name="user_chat_arrival",
    ),
]
# Indexes earlier versions created and this one does not use (dropped at start-up).
RETIRED_MESSAGE_INDEXES = ["user_chat_newest"]
CHAT_INDEXES = [
    IndexModel([("userId", ASCENDING), ("chatId", ASCENDING)], unique=True, name="user_chat_unique"),
    IndexModel(
        [("userId", ASCENDING), ("lastMessageAt", DESCENDING), ("chatId", DESCENDING)], name="user_newest"
    ),
    IndexModel(
        [("userId", ASCENDING), ("kind", ASCENDING), ("lastMessageAt", DESCENDING), ("chatId", DESCENDING)],
        name="user_kind_newest",
    ),
]


class StoreUnavailable(Exception):
    """MongoDB could not take the write now (down, failing over, write concern not met); retry later."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionFailure, WriteConcernError, ExecutionTimeout)):
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        return bool(details.get("writeConcernErrors")) or any(
            e.get("code") in _TRANSIENT_CODES for e in details.get("writeErrors", [])
        )
    if isinstance(exc, OperationFailure) and exc.code in _TRANSIENT_CODES:
        return True
    return isinstance(exc, PyMongoError) and (
        exc.has_error_label("RetryableWriteError") or exc.has_error_label("TransientTransactionError")
    )


@dataclass
class ApplyResult:
    written: int = 0  # events that changed a message (new, filled a stub, moved an ack forward)
    duplicates: int = 0  # events that changed nothing: replays, stale acks


@dataclass
class BulkOutcome:
    changed: int  # operations that changed a document
    unchanged: int  # operations that matched and changed nothing
    retried: set[int]  # the operations that met an existing document and were redone with `retry`


def replay_key(env: Envelope) -> bytes | None:
    """What a message or ack event writes, as a digest: two events with the same one make the same
    writes. `receivedAtMs` is left out: it only places a message not stored yet (`sortMs`)."""
    if not isinstance(env.data, (Message, MessageAck)):
        return None
    what = f"{env.user_id}\x1f{env.id}\x1f{env.type}\x1f{env.data.model_dump_json(exclude={'received_at_ms'})}"
    return hashlib.blake2b(what.encode(), digest_size=16).digest()


class Store:
    def __init__(self, db: AsyncDatabase, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._applied: Recent[bytes, bool] = Recent()

    @property
    def messages(self) -> AsyncCollection:
        return self.db[MESSAGES]

    @property
    def chats(self) -> AsyncCollection:
        return self.db[CHATS]

    @property
    def lids(self) -> AsyncCollection:
        return self.db[LIDS]

    async def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists with the same definition is a no-op."""
        await self.messages.create_indexes(MESSAGE_INDEXES)
        await self.chats.create_indexes(CHAT_INDEXES)
        await self.lids.create_index([("userId", ASCENDING), ("lid", ASCENDING)], unique=True, name="user_lid_unique")
        retired = set(RETIRED_MESSAGE_INDEXES) & set(await self.messages.index_information())
        if retired:
            # The first start after an upgrade: messages stored before `sortMs` existed get it (their
            # second), so they sort with the others, then the index they sorted by goes.
            await self.messages.update_many(
                {"timestamp": {"$exists": True}, "sortMs": {"$exists": False}},
                [{"$set": {"sortMs": {"$multiply": ["$timestamp", 1000]}}}],
            )
            for name in retired:
                await self.messages.drop_index(name)

    async def ping(self) -> bool:
        await self.db.client.admin.command("ping")
        return True

    async def apply(self, events: Sequence[Envelope]) -> ApplyResult:
        """Write a batch of events with one unordered bulk write per collection.

        Raises `StoreUnavailable` when MongoDB could not take it now; on any raise, the caller
        must not ack any event of the batch (replaying all of them is harmless).
        """
        fresh, keys = self._not_replayed(events)
        replays = len(events) - len(fresh)
        if not fresh:
            return ApplyResult(duplicates=replays)
        now = self.clock()
        on_messages = [env for env in fresh if isinstance(env.data, (Message, *MESSAGE_FACTS))]
        try:
            result, new = await self._write_messages(on_messages, now)
            await self._write_chats(on_messages, new, now)
            chat_ops = [
                chat_read(env, now) if isinstance(env.data, ChatRead) else chat_info(env, now)
                for env in fresh
                if isinstance(env.data, (ChatRead, ChatUpdated))
            ]
            await _bulk_write(self.chats, chat_ops, lambda i: chat_ops[i])
            lid_ops = [op for env in fresh if isinstance(env.data, ContactLidsMapped) for op in lid_mappings(env)]
            await _bulk_write(self.lids, lid_ops, lambda i: lid_ops[i])
        except PyMongoError as exc:
            if is_transient(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise
        for key in keys:
            self._applied.put(key, True)
        result.duplicates += replays
        return result

    def _not_replayed(self, events: Sequence[Envelope]) -> tuple[list[Envelope], set[bytes]]:
        """The events left once those written a moment ago (or earlier in `events`) are set aside,
        and the replay keys of the ones left."""
        fresh: list[Envelope] = []
        keys: set[bytes] = set()
        for env in events:
            key = replay_key(env)
            if key is not None:
                if key in keys or key in self._applied:
                    continue
                keys.add(key)
            fresh.append(env)
        return fresh, keys

    async def _write_messages(self, events: Sequence[Envelope], now: datetime) -> tuple[ApplyResult, set[int]]:
        """Answers the result and which of `events` inserted a new message."""
        ops = [message_insert(env, now) for env in events]

        def retry(i: int) -> UpdateOne:
            # The document exists (stored before, a stub, or a concurrent insert won): update it in place.
            return message_update(events[i], now, upsert=False)

        outcome = await _bulk_write(self.messages, ops, retry)
        inserted = {i for i, op in enumerate(ops) if isinstance(op, InsertOne) and i not in outcome.retried}
        return ApplyResult(written=outcome.changed, duplicates=outcome.unchanged), inserted

    async def _write_chats(self, events: Sequence[Envelope], inserted: set[int], now: datetime) -> None:
        by_chat: dict[tuple[str, str], list[tuple[int, Envelope]]] = {}
        for i, env in enumerate(events):
            if isinstance(env.data, Message):
                by_chat.setdefault((env.user_id, env.data.chat_id), []).append((i, env))
        # Only the newest message of each chat can become its `lastMessage`; the ones naming it go
        # along, and the ones received for the first time count as unread (not imported history:
        # the user saw it on the phone, and WhatsApp's sync does not say what was read).
        ops = [
            chat_update(
                max((env for _, env in messages), key=message_order),
                now,
                naming=[env for _, env in messages if env.data.chat_name],
                unread=[
                    env.data.timestamp for i, env in messages
                    if i in inserted and not env.data.from_me and not isinstance(env.data, MessageImported)
                ],
            )
            for messages in by_chat.values()
        ]
        # A chat two writers created at once: the loser's write now finds it and applies as an update.
        await _bulk_write(self.chats, ops, lambda i: ops[i])


async def _bulk_write(
    collection: AsyncCollection,
    ops: Sequence[InsertOne | UpdateOne],
    retry: Callable[[int], UpdateOne] | None = None,
) -> BulkOutcome:
    """One unordered bulk write; the operations that met an existing document (duplicate key:
    an insert of a stored document, an upsert that lost a concurrent insert) are retried once with
    `retry(i)` (by default, the same operation)."""
    if not ops:
        return BulkOutcome(0, 0, set())
    try:
        r = await collection.bulk_write(list(ops), ordered=False)
        return BulkOutcome(r.inserted_count + r.upserted_count + r.modified_count, r.matched_count - r.modified_count, set())
    except BulkWriteError as exc:
        details = exc.details
        errors = details.get("writeErrors", [])
        if details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        changed = details.get("nInserted", 0) + details.get("nUpserted", 0) + details.get("nModified", 0)
        unchanged = details.get("nMatched", 0) - details.get("nModified", 0)
    retried = {e["index"] for e in errors}
    again = [retry(i) if retry else ops[i] for i in sorted(retried)]
    r = await collection.bulk_write(again, ordered=False)
    return BulkOutcome(changed + r.modified_count, unchanged + r.matched_count - r.modified_count, retried)
