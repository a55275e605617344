"""The engine's store, as NOWEB keeps it: chats, their messages, contacts and the lid <-> phone number map.

Messages are kept compactly (one slotted Record each) and rendered as WAMessages when read. A chat
imported from a generated history holds a loader instead of records until it is first read.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .media import Media
from .messages import parse_serialized_id, serialized_id

STORE_KEEP = 20_000  # messages per session; the oldest go first


@dataclass(slots=True, eq=False)
class Record:
    raw_id: str
    chat_id: str
    from_me: bool
    timestamp: int
    body: str | None
    ack: int
    source: str = "app"
    participant: str | None = None  # the sender inside a group
    media: Media | None = None
    reply_to: dict[str, Any] | None = None  # WAHA's replyTo, fixed when the message was made
    push_name: str | None = None
    reactions: list[dict[str, Any]] = field(default_factory=list)
    removed: bool = False
    seq: int = 0  # order of arrival in the store, to break ties within a second

    @property
    def id(self) -> str:
        suffix = self.participant if not self.from_me and self.chat_id.endswith("@g.us") else None
        return serialized_id(self.from_me, self.chat_id, self.raw_id, suffix)


@dataclass(slots=True, eq=False)
class Chat:
    id: str
    name: str | None = None
    picture: str | None = None
    timestamp: int = 0
    records: deque[Record] = field(default_factory=deque)
    loader: Callable[[], list[Record]] | None = None  # a generated chat not read yet
    peek: Callable[[], Record | None] | None = None  # its last record, made without the others


@dataclass(slots=True)
class Contact:
    id: str
    name: str | None = None  # the name in the phone's address book
    pushname: str | None = None  # the name the person chose
    picture: str | None = None

    def as_waha(self) -> dict[str, Any]:
        # NOWEB's toWAContact: Baileys' `notify` is shown as `pushname`.
        return {"id": self.id, "name": self.name, "pushname": self.pushname}


def lid_for(session: str, pn: str) -> str:
    """A stable hidden id for a phone number, per session (WhatsApp's lids are ~15 digits)."""
    digits = str(int(hashlib.sha256(f"lid:{session}:{pn}".encode()).hexdigest(), 16))[:14]
    return f"1{digits}@lid"


class MessageStore:
    def __init__(self, keep: int = STORE_KEEP) -> None:
        self.keep = keep
        self._reset()

    def _reset(self) -> None:
        self.chats: dict[str, Chat] = {}
        self.contacts: dict[str, Contact] = {}
        self.lids: dict[str, str] = {}  # lid -> pn (both full ids)
        self.pns: dict[str, str] = {}  # pn -> lid
        self._by_raw: dict[str, Record] = {}
        self._order: deque[Record] = deque()
        self._size = 0
        self._seq = 0
        # Each maps a raw id to the generated chat that holds it (None: not one of its ids).
        self._decoders: list[Callable[[str], str | None]] = []

    def clear(self) -> None:
        self._reset()

    @property
    def size(self) -> int:
        return self._size

    # -- chats -------------------------------------------------------------------------------

    def chat(self, chat_id: str, create: bool = False) -> Chat | None:
        c = self.chats.get(chat_id)
        if c is None and create:
            c = self.chats[chat_id] = Chat(chat_id)
        return c

    def add_generated(self, chat: Chat) -> None:
        """A chat whose `loader` makes its records when it is first read."""
        self.chats[chat.id] = chat

    def add_decoder(self, decoder: Callable[[str], str | None]) -> None:
        self._decoders.append(decoder)

    def _materialize(self, chat: Chat) -> None:
        if chat.loader is not None:
            loader, chat.loader = chat.loader, None
            for rec in loader():
                self._append(chat, rec)

    def records(self, chat: Chat) -> deque[Record]:
        self._materialize(chat)
        return chat.records

    def last_record(self, chat: Chat) -> Record | None:
        if chat.loader is not None and chat.peek is not None:
            return chat.peek()
        recs = self.records(chat)
        return max(recs, key=lambda r: r.timestamp) if recs else None

    # -- lid <-> pn ---------------------------------------------------------------------------

    def map_lid(self, lid: str, pn: str) -> None:
        self.lids[lid] = pn
        self.pns[pn] = lid

    def same_person(self, chat_id: str) -> list[str]:
        """The chat ids WAHA's `merge` treats as one chat: a person's @c.us and @lid chats."""
        other = self.lids.get(chat_id) or self.pns.get(chat_id)
        return [chat_id, other] if other else [chat_id]

    def merged_id(self, chat_id: str) -> str:
        return self.lids.get(chat_id, chat_id)

    # -- messages ----------------------------------------------------------------------------

    def _append(self, chat: Chat, rec: Record) -> None:
        self._seq += 1
        rec.seq = self._seq
        chat.records.append(rec)
        chat.timestamp = max(chat.timestamp, rec.timestamp)
        self._by_raw[rec.raw_id] = rec
        self._order.append(rec)
        self._size += 1
        while self._size > self.keep and self._order:
            old = self._order.popleft()
            if not old.removed:
                self._drop(old)

    def add(self, rec: Record) -> None:
        chat = self.chat(rec.chat_id, create=True)
        assert chat is not None
        self._materialize(chat)
        self._append(chat, rec)

    def extend(self, chat: Chat, records: Iterable[Record]) -> None:
        self._materialize(chat)
        for rec in records:
            self._append(chat, rec)

    def _drop(self, rec: Record) -> None:
        rec.removed = True
        self._size -= 1
        if self._by_raw.get(rec.raw_id) is rec:
            del self._by_raw[rec.raw_id]
        chat = self.chats.get(rec.chat_id)
        if chat is not None:
            if chat.records and chat.records[0] is rec:
                chat.records.popleft()
            else:
                try:
                    chat.records.remove(rec)
                except ValueError:
                    pass

    def remove(self, rec: Record) -> None:
        if not rec.removed:
            self._drop(rec)

    def find_raw(self, raw_id: str) -> Record | None:
        rec = self._by_raw.get(raw_id)
        if rec is None:
            for decode in self._decoders:
                chat_id = decode(raw_id)
                if chat_id is not None and (chat := self.chats.get(chat_id)) is not None and chat.loader:
                    self._materialize(chat)
                    return self._by_raw.get(raw_id)
        return rec

    def find(self, message_id: str, chat_id: str | None = None) -> Record | None:
        """By serialized id or raw id; with `chat_id`, only a message of that chat (or the same person's)."""
        parsed = parse_serialized_id(message_id)
        rec = self.find_raw(parsed[2] if parsed else message_id)
        if rec is None:
            return None
        if chat_id is not None and chat_id != "all" and rec.chat_id not in self.same_person(chat_id):
            return None
        return rec

    def iter_records(self, chat_ids: Iterable[str]) -> Iterator[Record]:
        for cid in chat_ids:
            chat = self.chats.get(cid)
            if chat is not None:
                yield from self.records(chat)
