"""MongoDB side of the persister: the two collections, their indexes and idempotent batch writes.

`messages`: one document per (userId, WhatsApp message id), inserted by the message's first
event. Content fields are facts (`$set`, the same every time), `ack` only moves forward (`$max`),
so replays and out-of-order deliveries (an ack before its message) converge on one document. An ack that arrives first leaves a *stub*
(no `timestamp`) that the message fills in later; reads never show stubs.

`chats`: one document per (userId, chatId) with the newest message as `lastMessage`. It is
replaced only by a newer message (timestamp, then message id to break ties), so the outcome does
not depend on delivery order.
"""

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
from fleet_shared.contracts.events import Message, MessageAck
from fleet_shared.waha import GROUP, chat_kind

log = logging.getLogger(__name__)

MESSAGES = "messages"
CHATS = "chats"
DUPLICATE_KEY = 11000
# Server answers that mean "try again later", not "this write is wrong".
_TRANSIENT_CODES = {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

MESSAGE_INDEXES = [
    IndexModel([("userId", ASCENDING), ("id", ASCENDING)], unique=True, name="user_message_unique"),
    IndexModel(
        [("userId", ASCENDING), ("chatId", ASCENDING), ("timestamp", DESCENDING), ("id", DESCENDING)],
        name="user_chat_newest",
    ),
]
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


# --- building the writes (pure) ---------------------------------------------------------------


def message_key(user_id: str, message_id: str) -> dict:
    return {"userId": user_id, "id": message_id}


def message_content(m: Message) -> dict:
    """The message's fields as stored: facts, the same in every event that carries the message."""
    return {
        "chatId": m.chat_id,
        "fromMe": m.from_me,
        "from": m.from_,
        "to": m.to,
        "participant": m.participant,
        "body": m.body,
        "type": m.type,
        "hasMedia": m.has_media,
        "timestamp": m.timestamp,
    }


def message_insert(env: Envelope, now: datetime) -> InsertOne | UpdateOne:
    """The first write of an event: a message is inserted (the common case, and the cheapest write);
    an ack is an upsert (`message_update`). An insert that meets the document already there (a
    replay, a stub left by an early ack, a concurrent writer) is redone as `message_update`."""
    m = env.data
    if isinstance(m, MessageAck):
        return message_update(env, now)
    doc = {**message_key(env.user_id, m.id), **message_content(m), "storedAt": now}
    if m.ack is not None:
        doc["ack"] = m.ack
    return InsertOne(doc)


def message_update(env: Envelope, now: datetime, *, upsert: bool = True) -> UpdateOne:
    m = env.data
    key = message_key(env.user_id, m.id)
    if isinstance(m, MessageAck):
        # Only the ack: if the message is not stored yet this leaves a stub it fills in later.
        stub = {"$max": {"ack": m.ack}, "$setOnInsert": {"chatId": m.chat_id, "storedAt": now}}
        return UpdateOne(key, stub, upsert=upsert)
    update: dict = {"$set": message_content(m), "$setOnInsert": {"storedAt": now}}
    if m.ack is not None:
        update["$max"] = {"ack": m.ack}
    return UpdateOne(key, update, upsert=upsert)


def chat_update(env: Envelope, now: datetime, *, naming: Sequence[Envelope] = ()) -> UpdateOne | None:
    """The one write that makes a message its chat's `lastMessage` if it is newer than the stored
    one (a later second, or the same second and a greater id), creating the chat if it is missing.

    An update pipeline: the comparison with what is stored runs inside the write, which MongoDB
    applies to the one document atomically, so concurrent writers need no order among themselves,
    and the filter is an equality on `user_chat_unique` (a missing chat is created: its missing
    `lastMessageAt` sorts below every timestamp). Values go in as `$literal`: a body or a name
    that starts with `$` is text, not a field path.

    `naming`: the messages of the batch, `env` among them, that carry the chat's name (by default
    `env` alone, if it does). Written one by one in timestamp order, the older ones would fill in
    a missing name (the oldest first) and the ones newer than the stored message would rename the
    chat (the newest last); this write gives that same name.
    """
    m = env.data
    if not isinstance(m, Message):
        return None
    kind = chat_kind(m.chat_id)
    newer = _newer_than_stored(m)
    last = {"id": m.id, "body": m.body, "fromMe": m.from_me, "timestamp": m.timestamp}
    stage: dict = {
        "lastMessage": {"$cond": [newer, {"$literal": last}, "$lastMessage"]},
        "lastMessageAt": {"$cond": [newer, m.timestamp, "$lastMessageAt"]},
        "kind": {"$ifNull": ["$kind", kind]},
        "isGroup": {"$ifNull": ["$isGroup", kind == GROUP]},
        "createdAt": {"$ifNull": ["$createdAt", now]},
    }
    changed = newer
    naming = sorted(naming or ([env] if m.chat_name else []), key=_order)
    if naming:
        oldest, newest = naming[0].data, naming[-1].data
        fill = {"$ifNull": ["$name", {"$literal": oldest.chat_name}]}
        stage["name"] = {"$cond": [_newer_than_stored(newest), {"$literal": newest.chat_name}, fill]}
        # No naming message is newer than `env`, so `newer` covers a rename.
        changed = {"$or": [newer, {"$eq": [{"$ifNull": ["$name", None]}, None]}]}
    stage["updatedAt"] = {"$cond": [changed, now, "$updatedAt"]}
    return UpdateOne({"userId": env.user_id, "chatId": m.chat_id}, [{"$set": stage}], upsert=True)


def _newer_than_stored(m: Message) -> dict:
    """Aggregation expression: `m` is newer than the chat's stored `lastMessage` (or there is none)."""
    return {
        "$or": [
            {"$lt": ["$lastMessageAt", m.timestamp]},
            {"$and": [{"$eq": ["$lastMessageAt", m.timestamp]}, {"$lt": ["$lastMessage.id", {"$literal": m.id}]}]},
        ]
    }


# --- the repository ---------------------------------------------------------------------------


class Store:
    def __init__(self, db: AsyncDatabase, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    @property
    def messages(self) -> AsyncCollection:
        return self.db[MESSAGES]

    @property
    def chats(self) -> AsyncCollection:
        return self.db[CHATS]

    async def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists with the same definition is a no-op."""
        await self.messages.create_indexes(MESSAGE_INDEXES)
        await self.chats.create_indexes(CHAT_INDEXES)

    async def ping(self) -> bool:
        await self.db.client.admin.command("ping")
        return True

    async def apply(self, events: Sequence[Envelope]) -> ApplyResult:
        """Write a batch of message events with one unordered bulk write per collection.

        Raises `StoreUnavailable` when MongoDB could not take it now; on any raise, the caller
        must not ack any event of the batch (replaying all of them is harmless).
        """
        if not events:
            return ApplyResult()
        now = self.clock()
        try:
            result = await self._write_messages(events, now)
            await self._write_chats(events, now)
        except PyMongoError as exc:
            if is_transient(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise
        return result

    async def _write_messages(self, events: Sequence[Envelope], now: datetime) -> ApplyResult:
        ops = [message_insert(env, now) for env in events]

        def retry(i: int) -> UpdateOne:
            # The document exists (stored before, a stub, or a concurrent insert won): update it in place.
            return message_update(events[i], now, upsert=False)

        changed, unchanged = await _bulk_write(self.messages, ops, retry)
        return ApplyResult(written=changed, duplicates=unchanged)

    async def _write_chats(self, events: Sequence[Envelope], now: datetime) -> None:
        by_chat: dict[tuple[str, str], list[Envelope]] = {}
        for env in events:
            if isinstance(env.data, Message):
                by_chat.setdefault((env.user_id, env.data.chat_id), []).append(env)
        # Only the newest message of each chat can become its `lastMessage`; the ones naming it go along.
        ops: list[UpdateOne] = []
        for messages in by_chat.values():
            op = chat_update(max(messages, key=_order), now, naming=[env for env in messages if env.data.chat_name])
            if op is not None:
                ops.append(op)
        # A chat two writers created at once: the loser's write now finds it and applies as an update.
        await _bulk_write(self.chats, ops, lambda i: ops[i])


def _order(env: Envelope) -> tuple[int, str]:
    """Which of two messages of a chat is newer: the later second, then the greater id."""
    return env.data.timestamp, env.data.id


async def _bulk_write(
    collection: AsyncCollection, ops: Sequence[InsertOne | UpdateOne], retry: Callable[[int], UpdateOne]
) -> tuple[int, int]:
    """One unordered bulk write; the operations that met an existing document (duplicate key:
    an insert of a stored document, an upsert that lost a concurrent insert) are retried once with `retry(i)`.

    Returns (operations that changed a document, operations that matched and changed nothing).
    """
    if not ops:
        return 0, 0
    try:
        r = await collection.bulk_write(ops, ordered=False)
        return r.inserted_count + r.upserted_count + r.modified_count, r.matched_count - r.modified_count
    except BulkWriteError as exc:
        details = exc.details
        errors = details.get("writeErrors", [])
        if details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        changed = details.get("nInserted", 0) + details.get("nUpserted", 0) + details.get("nModified", 0)
        unchanged = details.get("nMatched", 0) - details.get("nModified", 0)
    r = await collection.bulk_write([retry(e["index"]) for e in errors], ordered=False)
    return changed + r.modified_count, unchanged + r.matched_count - r.modified_count
