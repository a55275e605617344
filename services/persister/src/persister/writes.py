"""The MongoDB writes each event causes, built as values (no I/O; `store.py` runs them).

`messages`: one document per (userId, WhatsApp message id). A message's first event inserts it;
content fields are facts (the same in every event of one message), `ack` only moves forward. Later
facts about a message change only their own fields, whatever order they come in: an edit keeps
its text even if a replay of the original message comes after it, a deletion keeps the text and
the media gone, a stored media copy is never replaced by a pending one, and a person's reaction is
replaced only by a newer one. A fact about a message not stored yet leaves a *stub* (no
`timestamp`) that the message fills in later; reads never show stubs.

Update pipelines compare with what is stored inside the write (atomic per document), and every
value from an event goes in as `$literal`, so a text that starts with `$` is text, not a field path.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import InsertOne, UpdateOne

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.events import (
    ChatRead,
    ChatUpdated,
    ContactLidsMapped,
    MemberChange,
    Message,
    MessageAck,
    MessageEdited,
    MessageMediaUpdated,
    MessageReaction,
    MessageRevoked,
)
from fleet_shared.contracts.media import MessageMedia
from fleet_shared.waha import GROUP, chat_kind

# Message events whose fact belongs to one message (each a write on `messages`).
MESSAGE_FACTS = (MessageAck, MessageReaction, MessageEdited, MessageRevoked, MessageMediaUpdated)


def message_key(user_id: str, message_id: str) -> dict:
    return {"userId": user_id, "id": message_id}


def sort_ms(m: Message) -> int:
    """Where a message sorts: its second, then when waha-fleet first heard of it within that second
    (WhatsApp's timestamps are whole seconds; without a time of its own it sorts first in its second)."""
    second = m.timestamp * 1000
    heard = m.received_at_ms
    return second if heard is None else min(max(heard, second), second + 999)


def media_doc(media: MessageMedia | None) -> dict | None:
    return media.model_dump(mode="json", by_alias=True, exclude_none=True) if media is not None else None


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
        "replyTo": m.reply_to,
        "fromPhone": m.from_phone,
        "fromLid": m.from_lid,
    }


# Known once, never forgotten: a later event without them (a webhook that did not resolve the lid)
# keeps what an earlier one (the history import) said.
KEPT_WHEN_MISSING = ("fromPhone", "fromLid")


# ---- expressions over the stored document ----------------------------------------------------

_REVOKED = {"$ne": [{"$ifNull": ["$revokedAt", None]}, None]}
_EDITED = {"$ne": [{"$ifNull": ["$editedAt", None]}, None]}
_MEDIA_STORED = {"$eq": ["$media.status", "stored"]}


def _kept_or(field: str, keep: dict, value: Any) -> dict:
    """`value` for `field`, unless `keep` (an expression) says the stored one stays."""
    return {"$cond": [keep, f"${field}", {"$literal": value}]}


def _media_expression(media: dict | None, *, replaces_pending: bool) -> Any:
    """The message's media after this event: gone once revoked; a stored copy stays; else the
    event's (`replaces_pending`: even over a pending or failed one) or, failing that, the stored one."""
    if media is None:
        return {"$cond": [_REVOKED, None, "$media"]}
    new = {"$literal": media}
    if media.get("status") == "stored" or replaces_pending:
        chosen: Any = {"$cond": [_MEDIA_STORED, "$media", new]}
    else:
        chosen = {"$ifNull": ["$media", new]}
    return {"$cond": [_REVOKED, None, chosen]}


# ---- the writes -------------------------------------------------------------------------------


def message_insert(env: Envelope, now: datetime) -> InsertOne | UpdateOne:
    """The first write of an event: a message is inserted (the common case, and the cheapest write);
    any other fact is an upsert (`message_update`). An insert that meets the document already there (a
    replay, a stub, a concurrent writer) is redone as `message_update`."""
    m = env.data
    if not isinstance(m, Message):
        return message_update(env, now)
    doc = {**message_key(env.user_id, m.id), **message_content(m), "sortMs": sort_ms(m), "storedAt": now}
    if m.ack is not None:
        doc["ack"] = m.ack
    if m.media is not None:
        doc["media"] = media_doc(m.media)
    return InsertOne(doc)


def message_update(env: Envelope, now: datetime, *, upsert: bool = True) -> UpdateOne:
    """The write of an event on a message that may be stored already (or, with `upsert`, not yet)."""
    m = env.data
    key = message_key(env.user_id, m.id)
    if isinstance(m, Message):
        return UpdateOne(key, [{"$set": _message_fields(m, now)}], upsert=upsert)
    if isinstance(m, MessageAck):
        # Only the ack: if the message is not stored yet this leaves a stub it fills in later.
        return UpdateOne(key, {"$max": {"ack": m.ack}, "$setOnInsert": {"chatId": m.chat_id, "storedAt": now}}, upsert=upsert)
    return UpdateOne(key, [{"$set": {**_stub_fields(m.chat_id, now), **_fact_fields(m)}}], upsert=upsert)


def _message_fields(m: Message, now: datetime) -> dict:
    content = message_content(m)
    content["body"] = _kept_or("body", {"$or": [_EDITED, _REVOKED]}, m.body)
    fields: dict[str, Any] = {name: {"$literal": value} for name, value in content.items() if name != "body"}
    fields["body"] = content["body"]
    for name in KEPT_WHEN_MISSING:
        fields[name] = {"$ifNull": [{"$literal": content[name]}, {"$ifNull": [f"${name}", None]}]}
    fields["sortMs"] = {"$ifNull": ["$sortMs", sort_ms(m)]}
    fields["media"] = _media_expression(media_doc(m.media), replaces_pending=False)
    fields["storedAt"] = {"$ifNull": ["$storedAt", now]}
    if m.ack is not None:
        fields["ack"] = {"$max": [{"$ifNull": ["$ack", m.ack]}, m.ack]}
    return fields


def _stub_fields(chat_id: str, now: datetime) -> dict:
    return {"chatId": {"$ifNull": ["$chatId", {"$literal": chat_id}]}, "storedAt": {"$ifNull": ["$storedAt", now]}}


def _fact_fields(fact: Any) -> dict:
    if isinstance(fact, MessageEdited):
        newer = {"$lt": [{"$ifNull": ["$editedAt", -1]}, fact.edited_at]}
        return {
            "body": {"$cond": [{"$and": [newer, {"$not": [_REVOKED]}]}, {"$literal": fact.body}, "$body"]},
            "editedAt": {"$cond": [newer, fact.edited_at, "$editedAt"]},
        }
    if isinstance(fact, MessageRevoked):
        return {
            "revokedAt": {"$ifNull": ["$revokedAt", fact.revoked_at]},
            "body": None,
            "media": None,
        }
    if isinstance(fact, MessageMediaUpdated):
        return {"media": _media_expression(media_doc(fact.media), replaces_pending=True)}
    if isinstance(fact, MessageReaction):
        return {"reactions": _reactions_after(fact)}
    raise TypeError(f"not a message fact: {type(fact).__name__}")


def _reactions_after(r: MessageReaction) -> dict:
    """The list of reactions, one per person: this one replaces theirs unless theirs is newer; an
    empty reaction takes theirs back."""
    stored = {"$ifNull": ["$reactions", []]}
    sender = {"$literal": r.from_}
    theirs = {"$filter": {"input": stored, "cond": {"$eq": ["$$this.from", sender]}}}
    others = {"$filter": {"input": stored, "cond": {"$ne": ["$$this.from", sender]}}}
    latest = {"$reduce": {"input": "$$theirs", "initialValue": -1, "in": {"$max": ["$$value", "$$this.timestamp"]}}}
    newer = {"$lt": [latest, r.timestamp]}
    mine = [{"from": r.from_, "fromMe": r.from_me, "reaction": r.reaction, "timestamp": r.timestamp}] if r.reaction else []
    return {
        "$let": {
            "vars": {"theirs": theirs},
            "in": {"$cond": [newer, {"$concatArrays": [others, {"$literal": mine}]}, stored]},
        }
    }


def chat_update(env: Envelope, now: datetime, *, naming: Sequence[Envelope] = (), unread: Sequence[int] = ()) -> UpdateOne:
    """The one write that makes a message its chat's `lastMessage` if it is newer than the stored
    one (a later second, or the same second and a greater id), creating the chat if it is missing.

    `naming`: the messages of the batch, `env` among them, that carry the chat's name (by default
    `env` alone, if it does). Written one by one in timestamp order, the older ones would fill in a
    missing name (the oldest first) and the ones newer than the stored message would rename the
    chat (the newest last); this write gives that same name. `unread`: the timestamps of the
    batch's messages this chat received for the first time; those newer than when the user last
    read the chat count as unread.
    """
    m = env.data
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
    changed: Any = newer
    naming = sorted(naming or ([env] if m.chat_name else []), key=message_order)
    if naming:
        oldest, newest = naming[0].data, naming[-1].data
        fill = {"$ifNull": ["$name", {"$literal": oldest.chat_name}]}
        stage["name"] = {"$cond": [_newer_than_stored(newest), {"$literal": newest.chat_name}, fill]}
        # No naming message is newer than `env`, so `newer` covers a rename.
        changed = {"$or": [newer, {"$eq": [{"$ifNull": ["$name", None]}, None]}]}
    if unread:
        read_at = {"$ifNull": ["$lastReadAt", -1]}
        count = {"$size": {"$filter": {"input": {"$literal": list(unread)}, "cond": {"$gt": ["$$this", read_at]}}}}
        stage["unreadCount"] = {"$add": [{"$ifNull": ["$unreadCount", 0]}, count]}
        changed = {"$or": [changed, {"$gt": [count, 0]}]}
    stage["updatedAt"] = {"$cond": [changed, now, "$updatedAt"]}
    return UpdateOne({"userId": env.user_id, "chatId": m.chat_id}, [{"$set": stage}], upsert=True)


def chat_info(env: Envelope, now: datetime) -> UpdateOne:
    """What WhatsApp says about the chat itself (`chat.updated`): its name (kept apart from the
    name messages give, `infoName`, and preferred to it), picture, a group's participants. Each
    field it tells replaces the stored one unless a newer word was stored already."""
    info: ChatUpdated = env.data
    kind = chat_kind(info.chat_id)
    newer = {"$lt": [{"$ifNull": ["$infoAtMs", -1]}, info.updated_at_ms]}
    told: dict[str, Any] = {"infoName": info.name, "picture": info.picture}
    if info.participants is not None:
        told["participants"] = [p.model_dump(mode="json", by_alias=True) for p in info.participants]
    stage: dict[str, Any] = {
        name: {"$cond": [newer, {"$ifNull": [{"$literal": value}, f"${name}"]}, f"${name}"]}
        for name, value in told.items()
    }
    stage["left"] = {"$cond": [newer, info.left, {"$ifNull": ["$left", False]}]}
    if info.member_changes:
        stage["participants"] = _members_after(info.member_changes)
    stage.update({
        "infoAtMs": {"$max": [{"$ifNull": ["$infoAtMs", -1]}, info.updated_at_ms]},
        "kind": {"$ifNull": ["$kind", kind]},
        "isGroup": {"$ifNull": ["$isGroup", kind == GROUP]},
        "createdAt": {"$ifNull": ["$createdAt", now]},
        "updatedAt": {"$cond": [newer, now, "$updatedAt"]},
    })
    return UpdateOne({"userId": env.user_id, "chatId": info.chat_id}, [{"$set": stage}], upsert=True)


def _members_after(changes: Sequence[MemberChange]) -> dict:
    """A group's participants after people joined, left, were promoted or demoted (applied as they
    come: each webhook is one change, WAHA sends them in order)."""
    by = {kind: [c.id for c in changes if c.change == kind] for kind in ("join", "leave", "promote", "demote")}
    joined = [{"id": c.id, "phone": c.phone, "role": "participant"} for c in changes if c.change == "join"]
    stored = {"$ifNull": ["$participants", []]}
    kept = {"$filter": {"input": stored, "cond": {"$not": [{"$in": ["$$this.id", {"$literal": by["leave"] + by["join"]}]}]}}}

    def role(ids: list[str], value: str, otherwise: Any) -> dict:
        return {"$cond": [{"$in": ["$$this.id", {"$literal": ids}]}, {"$mergeObjects": ["$$this", {"role": value}]}, otherwise]}

    roles = {"$map": {"input": kept, "in": role(by["promote"], "admin", role(by["demote"], "participant", "$$this"))}}
    return {"$concatArrays": [roles, {"$literal": joined}]}


def lid_mappings(env: Envelope) -> list[UpdateOne]:
    """People's two ids (`contact.lids_mapped`): one document per (user, lid)."""
    mapped: ContactLidsMapped = env.data
    return [
        UpdateOne({"userId": env.user_id, "lid": item.lid}, {"$set": {"phone": item.phone}}, upsert=True)
        for item in mapped.items
    ]


def chat_read(env: Envelope, now: datetime) -> UpdateOne:
    """The user read the chat: nothing is unread, until a message newer than that comes."""
    read: ChatRead = env.data
    kind = chat_kind(read.chat_id)
    stage = {
        "unreadCount": 0,
        "lastReadAt": {"$max": [{"$ifNull": ["$lastReadAt", read.read_at]}, read.read_at]},
        "kind": {"$ifNull": ["$kind", kind]},
        "isGroup": {"$ifNull": ["$isGroup", kind == GROUP]},
        "createdAt": {"$ifNull": ["$createdAt", now]},
        "updatedAt": now,
    }
    return UpdateOne({"userId": env.user_id, "chatId": read.chat_id}, [{"$set": stage}], upsert=True)


def _newer_than_stored(m: Message) -> dict:
    """Aggregation expression: `m` is newer than the chat's stored `lastMessage` (or there is none)."""
    return {
        "$or": [
            {"$lt": ["$lastMessageAt", m.timestamp]},
            {"$and": [{"$eq": ["$lastMessageAt", m.timestamp]}, {"$lt": ["$lastMessage.id", {"$literal": m.id}]}]},
        ]
    }


def message_order(env: Envelope) -> tuple[int, str]:
    """Which of two messages of a chat is newer: the later second, then the greater id."""
    return env.data.timestamp, env.data.id
