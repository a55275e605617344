"""Read side: one user's chats and messages, newest first, paged with opaque keyset cursors.

A cursor is the sort key of the last item handed out, `(timestamp, id)`; the next page is
everything strictly older, `ts < c_ts or (ts == c_ts and id < c_id)`, read from a compound index.
Items inserted after the first page (new messages are newer) cannot shift later pages.

Every read is a range of the compound index with a limit (`newest_page`), never `$exists` (the
first page leaves out stubs, which have no timestamp) nor a top-level `$or` for the cursor's tie:
MongoDB plans either well, but SecantusDB, the MongoDB-wire server of local runs and tests,
answers `$exists` by walking all of the user's index entries and any top-level `$or` by scanning
the whole collection (a page took ~160 ms with 15,000 messages stored instead of ~1.3-1.5 ms).

A page is one `model_validate` of the whole page: pydantic-core validates it in less time than
`model_construct` takes to build its items one by one in Python (about half, for 50 messages).
"""

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from fleet_shared.contracts import Envelope, Reply
from fleet_shared.contracts.commands import GetMedia, ListChats, ListContacts, ListGroups, ListMessages, MediaRecord
from fleet_shared.contracts.pages import ChatPage, MediaItem, MessageItem, MessagePage
from fleet_shared.contracts.stream import EventPage, ListEvents
from fleet_shared.inbound import BadDelivery, KeyMismatch, NotJson, UnexpectedType, read_delivery
from fleet_shared.waha import CONTACT, GROUP

from .eventlog import EventLog
from .metrics import QUERIES
from .paging import DEFAULT_PAGE_MAX_BYTES, PAGE_BATCH, json_size
from .store import Store, is_transient

log = logging.getLogger(__name__)

# A message cursor holds its `sortMs` (`n`); one handed out by an earlier version its second (`m`).
MESSAGE_CURSOR, SECONDS_MESSAGE_CURSOR, CHAT_CURSOR = "n", "m", "c"
# A message is stored under its wire names (`writes.message_content`): read with only these fields,
# the documents are the page's items as they are, but for the media (where its copy is kept stays
# inside; its caption is the message's text).
MESSAGE_FIELDS = tuple(field.alias or name for name, field in MessageItem.model_fields.items())
MEDIA_FIELDS = tuple(field.alias or name for name, field in MediaItem.model_fields.items() if name != "caption")
MESSAGE_PROJECTION: dict[str, int] = {
    "_id": 0,
    "sortMs": 1,
    **dict.fromkeys((f for f in MESSAGE_FIELDS if f != "media"), 1),
    **{f"media.{f}": 1 for f in MEDIA_FIELDS},
}
CHAT_KINDS = {ListChats.TYPE: None, ListGroups.TYPE: GROUP, ListContacts.TYPE: CONTACT}
QUERY_TYPES = frozenset({*CHAT_KINDS, ListMessages.TYPE, GetMedia.TYPE, ListEvents.TYPE})


class InvalidCursor(ValueError):
    pass


def encode_cursor(kind: str, ts: int, key: str) -> str:
    raw = json.dumps([kind, ts, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, *, also: str | None = None) -> tuple[str, int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor("cursor is not one this service handed out") from exc
    if not (
        isinstance(value, list)
        and len(value) == 3
        and value[0] in (kind, also)
        and type(value[1]) is int
        and INT64_MIN <= value[1] <= INT64_MAX  # MongoDB compares 8-byte integers at most
        and isinstance(value[2], str)
    ):
        raise InvalidCursor("cursor is not one this service handed out")
    return value[0], value[1], value[2]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Every int64: the sort fields are integers (unix seconds), so this is "has the field" as an index range.
EVERY_INTEGER = {"$gte": INT64_MIN}


async def newest_page(
    collection: AsyncCollection,
    query: dict,
    sort_field: str,
    key_field: str,
    limit: int,
    after: tuple[int, str] | None,
    projection: dict | None = None,
    max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
) -> tuple[list[dict], tuple[int, str] | None]:
    """Up to `limit` documents of `query`, newest first by `(sort_field, key_field)`, strictly older
    than the cursor `after`, and no more than `max_bytes` of them (`json_size`; at least one); and
    the cursor of the next page (None: this is the last one).

    After a cursor, "older" is read as two index ranges, one after the other: the rest of the
    cursor's own second (smaller keys), then the earlier seconds, the second only if the first
    did not fill the page.
    """
    ranges: list[dict[str, Any]]
    if after is None:
        ranges = [{sort_field: EVERY_INTEGER}]
    else:
        ts, key = after
        ranges = [{sort_field: ts, key_field: {"$lt": key}}, {sort_field: {"$lt": ts}}]
    docs: list[dict] = []
    size = 0
    for bound in ranges:
        found = (
            collection.find({**query, **bound}, projection or {"_id": 0})
            .sort([(sort_field, -1), (key_field, -1)])
            .limit(limit + 1 - len(docs))
            .batch_size(PAGE_BATCH)
        )
        async with found:
            async for doc in found:
                cost = json_size(doc)
                if len(docs) == limit or (docs and size + cost > max_bytes):
                    return docs, (docs[-1][sort_field], docs[-1][key_field])  # more after these
                docs.append(doc)
                size += cost
    return docs, None


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def chat_item(doc: dict, phones: dict[str, str]) -> dict:
    """A chat document as the fields of its `ChatItem` (`phones`: lid -> phone id of the page's @lid chats)."""
    return {
        "chatId": doc["chatId"],
        "name": doc.get("infoName") or doc.get("name"),
        "picture": doc.get("picture"),
        "phone": phones.get(doc["chatId"]),
        "participants": doc.get("participants"),
        "isGroup": bool(doc.get("isGroup")),
        "lastMessage": doc.get("lastMessage"),
        "updatedAt": _iso(doc.get("updatedAt")),
        "unreadCount": doc.get("unreadCount") or 0,
    }


def message_items(docs: list[dict]) -> list[dict]:
    """Message documents (read with `MESSAGE_PROJECTION`) as the fields of their `MessageItem`s: a
    media message's text is its caption, the sort key stays inside."""
    for doc in docs:
        del doc["sortMs"]
        if doc.get("media"):
            doc["media"]["caption"] = doc.get("body")
    return docs


class QueryService:
    def __init__(self, store: Store, page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES, event_log: EventLog | None = None) -> None:
        self.store = store
        self.page_max_bytes = page_max_bytes
        self.event_log = event_log or EventLog(store.db)

    async def list_events(self, user_id: str, after: int, limit: int) -> EventPage:
        items = await self.event_log.page(user_id, after, limit, self.page_max_bytes)
        newest = items[-1]["seq"] if items else 0
        return EventPage.model_construct(
            items=items, next=newest or after, last=max(newest, await self.event_log.last_seq(user_id))
        )

    async def list_messages(self, user_id: str, chat_id: str, limit: int, before: str | None) -> MessagePage:
        after = None
        if before:
            kind, sort, key = decode_cursor(MESSAGE_CURSOR, before, also=SECONDS_MESSAGE_CURSOR)
            after = (sort * 1000 + 999 if kind == SECONDS_MESSAGE_CURSOR else sort, key)
        query = {"userId": user_id, "chatId": chat_id}
        docs, more = await newest_page(
            self.store.messages, query, "sortMs", "id", limit, after, MESSAGE_PROJECTION, self.page_max_bytes
        )
        cursor = encode_cursor(MESSAGE_CURSOR, *more) if more else None
        phones = await self.phones_of(user_id, {d["fromLid"] for d in docs if d.get("fromLid") and not d.get("fromPhone")})
        for doc in docs:
            if doc.get("fromLid") in phones and not doc.get("fromPhone"):
                doc["fromPhone"] = phones[doc["fromLid"]]
        return MessagePage.model_validate({"items": message_items(docs), "nextCursor": cursor})

    async def phones_of(self, user_id: str, lids: set[str]) -> dict[str, str]:
        """lid -> phone id of those of `lids` the user's history import mapped (one indexed read)."""
        if not lids:
            return {}
        found = self.store.lids.find({"userId": user_id, "lid": {"$in": sorted(lids)}}, {"_id": 0, "lid": 1, "phone": 1})
        return {doc["lid"]: doc["phone"] async for doc in found}

    async def media(self, user_id: str, message_id: str) -> MediaRecord | None:
        """The message's media record, if the message is the user's and has one."""
        doc = await self.store.messages.find_one(
            {"userId": user_id, "id": message_id, "media": {"$type": "object"}}, {"_id": 0, "id": 1, "chatId": 1, "media": 1}
        )
        return MediaRecord.model_validate(doc) if doc is not None else None

    async def list_chats(self, user_id: str, kind: str | None, limit: int, cursor: str | None) -> ChatPage:
        after = decode_cursor(CHAT_CURSOR, cursor)[1:] if cursor else None
        query: dict = {"userId": user_id}
        if kind is not None:
            query["kind"] = kind
        docs, more = await newest_page(
            self.store.chats, query, "lastMessageAt", "chatId", limit, after, max_bytes=self.page_max_bytes
        )
        next_cursor = encode_cursor(CHAT_CURSOR, *more) if more else None
        phones = await self.phones_of(user_id, {d["chatId"] for d in docs if d["chatId"].endswith("@lid")})
        return ChatPage.model_validate({"items": [chat_item(d, phones) for d in docs], "nextCursor": next_cursor})

    async def run(self, env: Envelope) -> Reply:
        """Answer a validated query; the user is always the envelope's, never anything in `data`."""
        q = env.data
        if isinstance(q, ListMessages):
            return Reply.success(await self.list_messages(env.user_id, q.chat_id, q.limit, q.before))
        if isinstance(q, ListEvents):
            return Reply.success(await self.list_events(env.user_id, q.after, q.limit))
        if isinstance(q, GetMedia):
            record = await self.media(env.user_id, q.message_id)
            if record is None:
                return Reply.failure("media_not_found", "no media for this message", 404)
            return Reply.success(record)
        return Reply.success(await self.list_chats(env.user_id, CHAT_KINDS[env.type], q.limit, q.cursor))

    async def answer(self, body: bytes, routing_key: str | None = None) -> Reply:
        """Any delivery -> a Reply; never raises."""
        query_type, reply = "invalid", None
        try:
            query_type, reply = await self._answer(body, routing_key)
        except Exception:
            log.exception("query %s failed", query_type)
            reply = Reply.failure("internal_error", "internal error", 500)
        QUERIES.labels(query_type, "ok" if reply.ok or reply.error is None else reply.error.code).inc()
        return reply

    async def _answer(self, body: bytes, routing_key: str | None) -> tuple[str, Reply]:
        try:
            env = read_delivery(body, routing_key, types=QUERY_TYPES, replays=True)
        except NotJson:
            return "invalid", Reply.failure("invalid_query", "query is not JSON", 400)
        except UnexpectedType as exc:
            return "unknown", Reply.failure("unknown_query", f"the persister does not answer {exc.message_type!r}", 400)
        except KeyMismatch as exc:
            return str(exc.message_type), Reply.failure("invalid_query", "routing key does not match the query", 400)
        except BadDelivery as exc:  # not a valid envelope of its type
            return str(exc.message_type), Reply.failure("invalid_query", str(exc), 400)
        query_type = env.type
        try:
            return query_type, await self.run(env)
        except InvalidCursor as exc:
            return query_type, Reply.failure("invalid_cursor", str(exc), 400)
        except PyMongoError as exc:
            log.warning("query %s failed: %r", query_type, exc)
            if is_transient(exc):
                return query_type, Reply.failure("storage_unavailable", "the message store is unavailable", 503)
            return query_type, Reply.failure("internal_error", "internal error", 500)
