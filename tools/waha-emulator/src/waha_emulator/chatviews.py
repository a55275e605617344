"""Reads of the store the way NOWEB answers them: chat lists and filtered, sorted message pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import StoreDisabled
from .messages import ensure_suffix, sort_page
from .state import Session
from .store import Chat, MessageStore, Record


def require_store(s: Session, default: bool) -> MessageStore:
    if not s.store_enabled(default):
        raise StoreDisabled()
    return s.store


def chat_name(s: Session, chat: Chat) -> str | None:
    """The chat's name, else the group's subject, else the contact's saved name or push name
    (fetchChatSummary's order)."""
    group = s.groups.get(chat.id)
    if chat.name or group:
        return chat.name or (group.subject if group else None)
    store = s.store
    contact = store.contacts.get(chat.id) or store.contacts.get(store.merged_id(chat.id))
    return (contact.name or contact.pushname) if contact else None


def chats(s: Session, merge: bool) -> list[dict[str, Any]]:
    """Baileys chats as NOWEB's getChats shows them (unreadCount removed); with `merge`, a person's @lid
    chat is folded into their @c.us chat."""
    store = s.store
    out: dict[str, dict[str, Any]] = {}
    for chat in store.chats.values():
        cid = store.merged_id(chat.id) if merge else chat.id
        entry = out.get(cid)
        if entry is None:
            out[cid] = {"id": cid, "name": chat_name(s, chat), "conversationTimestamp": chat.timestamp}
        else:
            entry["conversationTimestamp"] = max(entry["conversationTimestamp"], chat.timestamp)
            entry["name"] = entry["name"] or chat_name(s, chat)
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
        records.sort(key=lambda r: (r.timestamp, r.seq))  # several chats: in time, then arrival, order first
    return sort_page(records, lambda r: r.timestamp, descending, limit, offset)


def picture_of(s: Session, chat_id: str) -> str | None:
    """What WhatsApp answers for a profile picture (NOWEB's fetchContactProfilePicture needs no store)."""
    chat_id = ensure_suffix(chat_id)
    group = s.groups.get(chat_id)
    if group is not None:
        return group.picture
    for cid in s.store.same_person(chat_id):
        contact = s.store.contacts.get(cid)
        chat = s.store.chats.get(cid)
        picture = (contact.picture if contact else None) or (chat.picture if chat else None)
        if picture:
            return picture
    return None


def overview(s: Session, merge: bool, ids: list[str] | None, limit: int | None,
             offset: int) -> list[tuple[dict[str, Any], Record | None]]:
    """getChatsOverview's chats, newest last message first, each with its last message."""
    store = s.store
    items = chats(s, merge)
    if ids:
        wanted = {store.merged_id(ensure_suffix(i)) if merge else ensure_suffix(i) for i in ids}
        items = [c for c in items if c["id"] in wanted]
    page = sort_page(items, lambda c: c["conversationTimestamp"], True, limit, offset)
    out = []
    for chat in page:
        ids_ = store.same_person(chat["id"]) if merge else [chat["id"]]
        lasts = [r for cid in ids_ if (c := store.chats.get(cid)) and (r := store.last_record(c))]
        out.append((chat, max(lasts, key=lambda r: r.timestamp) if lasts else None))
    return out
