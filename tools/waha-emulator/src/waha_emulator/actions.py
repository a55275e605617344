"""What happens to messages after they are sent: reactions, edits, deletions, read receipts, typing, presence.

The other person's actions come from the control API; the user's own come from WAHA's API. NOWEB
sees both the same way (a reaction/edit/revoke message upserted), so both emit `message.reaction`,
`message.edited` and `message.revoked`, with `fromMe` telling them apart (session.noweb.core.ts,
subscribeEngineEvents2). Reads, typing and own presence emit nothing: NOWEB only reports acks of
the user's own messages, and presence.update only for other people.
"""

from __future__ import annotations

from typing import Any

from .messages import (
    ensure_suffix,
    is_group,
    new_inbound_raw_id,
    new_sent_raw_id,
    now_ms,
    now_s,
    parse_serialized_id,
    to_jid,
)
from .messaging import Messaging, me_id
from .state import Session, SessionManager, StateConflict, Status
from .store import Record
from .wamessage import baileys_record, wa_message

PRESENCES = ("online", "offline", "typing", "recording", "paused")
READ = 3
SEEN_DAYS = 7
SEEN_MAX = {"dm": 30, "group": 100}  # WAHA: "30 max for DM, 100 max for groups"


class Actor:
    """Who does something in a chat: the user (from_me) or another person, maybe inside a group."""

    def __init__(self, chat_id: str, from_me: bool, participant: str | None = None) -> None:
        self.chat_id = chat_id
        self.from_me = from_me
        self.participant = participant

    def record(self, body: str | None, source: str) -> Record:
        raw = new_sent_raw_id() if self.from_me else new_inbound_raw_id()
        return Record(raw_id=raw, chat_id=self.chat_id, from_me=self.from_me, timestamp=now_s(), body=body,
                      ack=0 if self.from_me else 2, source=source, participant=self.participant)

    def key(self) -> dict[str, Any]:
        key: dict[str, Any] = {"remoteJid": to_jid(self.chat_id), "fromMe": self.from_me}
        if self.participant:
            key["participant"] = to_jid(self.participant)
        return key


def target_key(target: Record | None, message_id: str) -> dict[str, Any]:
    parsed = parse_serialized_id(message_id)
    if target is not None:
        key = {"remoteJid": to_jid(target.chat_id), "fromMe": target.from_me, "id": target.raw_id}
        if target.participant:
            key["participant"] = to_jid(target.participant)
        return key
    if parsed is not None:
        return {"remoteJid": to_jid(parsed[1]), "fromMe": parsed[0], "id": parsed[2]}
    return {"id": message_id}


class Actions:
    def __init__(self, manager: SessionManager, messaging: Messaging) -> None:
        self.manager = manager
        self.messaging = messaging

    def _log(self, s: Session, action: str, **fields: Any) -> None:
        s.activity = now_ms()
        s.actions.append({"action": action, **fields, "timestamp": now_ms()})

    def other(self, s: Session, from_: str, participant: str | None, as_lid: bool) -> Actor:
        if s.status != Status.WORKING:
            raise StateConflict(s, [str(Status.WORKING)])
        chat = ensure_suffix(from_)
        if is_group(chat):
            return Actor(chat, False, self.messaging.sender(s, participant, as_lid) if participant else None)
        return Actor(self.messaging.sender(s, from_, as_lid), False)

    def own(self, s: Session, chat_id: str) -> Actor:
        return Actor(ensure_suffix(chat_id), True)

    # -- reactions -----------------------------------------------------------------------------

    def react(self, s: Session, actor: Actor, message_id: str, text: str) -> dict[str, Any]:
        target = s.store.find(message_id)
        rec = actor.record(None, "api" if actor.from_me else "app")
        if target is not None:
            author = actor.key()
            target.reactions = [r for r in target.reactions if r["key"] != author]
            if text:
                target.reactions.append({"key": author, "text": text, "senderTimestampMs": now_ms()})
        data = baileys_record(rec, status="PENDING" if actor.from_me else None)
        data["message"] = {"reactionMessage": {"key": target_key(target, message_id), "text": text,
                                               "senderTimestampMs": str(now_ms())}}
        view = wa_message(rec, me_id(s))
        payload = {"id": rec.id, "timestamp": rec.timestamp, "from": view["from"], "fromMe": actor.from_me,
                   "source": rec.source, "to": view["to"], "participant": view["participant"],
                   "reaction": {"text": text, "messageId": target.id if target is not None else message_id}}
        if actor.from_me:
            self._log(s, "reaction", messageId=message_id, reaction=text, id=rec.id)
        self.manager.emit(s, "message.reaction", payload)
        return data if actor.from_me else payload

    # -- edits and revokes ---------------------------------------------------------------------

    def edit(self, s: Session, actor: Actor, message_id: str, text: str) -> dict[str, Any]:
        target = s.store.find(message_id)
        if target is not None:
            target.body = text
        key = target_key(target, message_id)
        rec = actor.record(text, "api" if actor.from_me else "app")
        data = baileys_record(rec, status="PENDING" if actor.from_me else None)
        data["message"] = {"protocolMessage": {"key": key, "type": "MESSAGE_EDIT",
                                               "editedMessage": {"conversation": text}}}
        payload = {**wa_message(rec, me_id(s)), "body": text, "editedMessageId": key["id"], "_data": data}
        if actor.from_me:
            self._log(s, "edit", chatId=actor.chat_id, messageId=message_id, text=text, id=rec.id)
        self.manager.emit(s, "message.edited", payload)
        return data if actor.from_me else payload

    def revoke(self, s: Session, actor: Actor, message_id: str) -> dict[str, Any]:
        target = s.store.find(message_id)
        key = target_key(target, message_id)
        if target is not None:
            s.store.remove(target)  # NOWEB's store drops a revoked message
        rec = actor.record(None, "api" if actor.from_me else "app")
        data = baileys_record(rec, status="PENDING" if actor.from_me else None)
        data["message"] = {"protocolMessage": {"key": key, "type": "REVOKE"}}
        after = {**wa_message(rec, me_id(s)), "_data": data}
        payload = {"after": after, "before": None, "revokedMessageId": key["id"], "_data": data}
        if actor.from_me:
            self._log(s, "delete", chatId=actor.chat_id, messageId=message_id, id=rec.id)
        self.manager.emit(s, "message.revoked", payload)
        return data if actor.from_me else payload

    # -- reads, typing, presence ---------------------------------------------------------------

    def seen(self, s: Session, chat_id: str, message_ids: list[str] | None,
             participant: str | None) -> dict[str, Any] | None:
        """sendSeen; without ids it reads the chat's unread messages of the last 7 days (and answers them)."""
        chat_id = ensure_suffix(chat_id)
        answer: dict[str, Any] | None = None
        if not message_ids:
            since = now_s() - SEEN_DAYS * 86400
            unread = [r for r in s.store.iter_records(s.store.same_person(chat_id))
                      if not r.from_me and r.ack < READ and r.timestamp >= since]
            unread.sort(key=lambda r: r.timestamp, reverse=True)
            message_ids = [r.id for r in unread[:SEEN_MAX["group" if is_group(chat_id) else "dm"]]]
            answer = {"ids": message_ids}
        for mid in message_ids:
            rec = s.store.find(mid)
            if rec is not None and not rec.from_me:
                rec.ack = READ
        self._log(s, "seen", chatId=chat_id, messageIds=list(message_ids), participant=participant)
        return answer

    def typing(self, s: Session, chat_id: str, start: bool) -> None:
        self._log(s, "typing", chatId=ensure_suffix(chat_id), state="start" if start else "stop")

    def set_presence(self, s: Session, presence: str, chat_id: str | None) -> None:
        if presence in ("online", "offline"):
            s.presence = presence
        self._log(s, "presence", presence=presence, chatId=ensure_suffix(chat_id) if chat_id else None)

    def presence_of(self, s: Session, actor: Actor, presence: str) -> dict[str, Any]:
        """presence.update for another person (in a group, `actor.participant`)."""
        who = actor.participant or actor.chat_id
        payload = {"id": actor.chat_id,
                   "presences": [{"participant": who, "lastKnownPresence": presence, "lastSeen": None}]}
        self.manager.emit(s, "presence.update", payload)
        return payload
