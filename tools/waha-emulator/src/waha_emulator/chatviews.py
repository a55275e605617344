"""Reads of the store the way NOWEB answers them: chat lists and filtered, sorted message pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import StoreDisabled
from .messages import sort_page
from .state import Session
from .store import Chat, MessageStore, Record


def require_store(s: Session, default: bool) -> MessageStore:
    if not s.store_enabled(default):
        raise StoreDisabled()
    return s.store


def chat_name(store: MessageStore, chat: Chat) -> str | None:
    if chat.name:
        return chat.name
    contact = store.contacts.get(chat.id) or store.contacts.get(store.merged_id(chat.id))
    return (contact.name or contact.pushname) if contact else None


def chats(store: MessageStore, merge: bool) -> list[dict[str, Any]]:
    """Baileys chats as NOWEB's getChats shows them (unreadCount removed); with `merge`, a person's @lid
    chat is folded into their @c.us chat."""
    out: dict[str, dict[str, Any]] = {}
    for chat in store.chats.values():
        cid = store.merged_id(chat.id) if merge else chat.id
        entry = out.get(cid)
        if entry is None:
            out[cid] = {"id": cid, "name": chat_name(store, chat), "conversationTimestamp": chat.timestamp}
        else:
            entry["conversationTimestamp"] = max(entry["conversationTimestamp"], chat.timestamp)
            entry["name"] = entry["name"] or chat_name(store, chat)
    return list(out.values())


@dataclass
class MessageFilter:
    gte: int | None = None
    lte: int | None = None
    from_me: bool | None = None
    ack: int | None = None

    def keeps(self, rec: Record) -> bool:
        return ((self.gte is None or rec.timestamp >= self.gte) and (self.lte is None or rec.timestamp <= self.lte)
                and (self.from_me is None or rec.from_me == self.from_me)
                and (self.ack is None or rec.ack == self.ack))


def chat_ids(store: MessageStore, chat_id: str, merge: bool) -> Iterable[str]:
    if chat_id == "all":
        return list(store.chats)
    return store.same_person(chat_id) if merge else [chat_id]


def messages(store: MessageStore, chat_id: str, merge: bool, flt: MessageFilter, descending: bool,
             limit: int | None, offset: int) -> list[Record]:
    records = [r for r in store.iter_records(chat_ids(store, chat_id, merge)) if flt.keeps(r)]
    if chat_id == "all" or (merge and len(store.same_person(chat_id)) > 1):
        records.sort(key=lambda r: r.timestamp)  # several chats: put them in time order first
    return sort_page(records, lambda r: r.timestamp, descending, limit, offset)
