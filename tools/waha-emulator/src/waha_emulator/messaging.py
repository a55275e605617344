"""Sent and received messages: sendText, inbound messages from the 'phone', acks."""

from __future__ import annotations

import asyncio
from typing import Any

from .config import EmulatorConfig
from .messages import (
    ack_name,
    ack_payload,
    ensure_suffix,
    new_inbound_raw_id,
    new_sent_raw_id,
    now_s,
    serialized_id,
    to_jid,
    wa_message,
)
from .state import Session, SessionManager, StateConflict, Status, now_ms

LOG_KEEP = 10_000


class Messaging:
    def __init__(self, manager: SessionManager, config: EmulatorConfig) -> None:
        self.manager = manager
        self.config = config

    def _log(self, s: Session, message: dict[str, Any]) -> None:
        s.activity = now_ms()
        s.messages.append(message)
        del s.messages[:-LOG_KEEP]

    def find(self, s: Session, message_id: str) -> dict[str, Any] | None:
        for m in reversed(s.messages):
            if m["id"] == message_id:
                return m
        return None

    def send_text(self, s: Session, chat_id: str, text: str, reply_to: str | None,
                  raw_id: str | None = None) -> dict[str, Any]:
        """Record an API send on a WORKING session; answer in the configured engine shape.

        `raw_id` is sendText's optional `id` (from new-message-id). The emulator does not
        deduplicate by it: sending twice with one id records two messages.
        """
        chat_id = ensure_suffix(chat_id)
        me_id = s.linked_me["id"] if s.linked_me else None
        raw_id = raw_id or new_sent_raw_id()
        ts = now_s()
        quoted: dict[str, Any] | None = None
        if reply_to:
            original = self.find(s, reply_to)
            quoted = {"id": reply_to, "participant": original.get("participant") if original else None,
                      "body": original.get("body") if original else None, "hasMedia": False, "media": None,
                      "_data": {}}
        baileys = {
            "key": {"remoteJid": to_jid(chat_id), "fromMe": True, "id": raw_id},
            "message": {"extendedTextMessage": {"text": text}},
            "messageTimestamp": str(ts),
            "status": "PENDING",
        }
        message = wa_message(message_id=serialized_id(True, chat_id, raw_id), from_=me_id, to=chat_id,
                             from_me=True, body=text, source="api", ack=0, reply_to=quoted, timestamp=ts,
                             data=baileys)
        self._log(s, message)
        s.sent.append(({"chatId": chat_id, "text": text, "reply_to": reply_to}, message))
        self.manager.emit(s, "message.any", dict(message))
        self.manager.spawn(s, self._acks(s, message))
        if self.config.send_shape == "noweb":
            return baileys
        return dict(message)

    async def _acks(self, s: Session, message: dict[str, Any]) -> None:
        for ack in (1, 2):  # SERVER, then DEVICE
            await asyncio.sleep(self.config.ack_delay)
            if s.status != Status.WORKING:
                return
            self.set_ack(s, message["id"], ack)

    def set_ack(self, s: Session, message_id: str, ack: int) -> dict[str, Any]:
        message = self.find(s, message_id)
        if message is not None:
            message["ack"] = ack
            message["ackName"] = ack_name(ack)
        payload = ack_payload(message, message_id, ack, s.linked_me["id"] if s.linked_me else None)
        self.manager.emit(s, "message.ack", payload)
        return payload

    def sent_view(self, s: Session) -> list[dict[str, Any]]:
        return [{**message, **request} for request, message in s.sent]

    def inbound(self, s: Session, from_: str, body: str, participant: str | None,
                raw_id: str | None, push_name: str | None = None) -> dict[str, Any]:
        if s.status != Status.WORKING:
            raise StateConflict(s, [str(Status.WORKING)])
        from_ = ensure_suffix(from_)
        participant = ensure_suffix(participant) if participant else None
        raw_id = raw_id or new_inbound_raw_id()
        suffix = participant if from_.endswith("@g.us") else None
        message = wa_message(message_id=serialized_id(False, from_, raw_id, suffix), from_=from_,
                             to=s.linked_me["id"] if s.linked_me else None, from_me=False, body=body,
                             source="app", ack=2, participant=participant,
                             # NOWEB's raw Baileys record carries the sender's profile name.
                             data={"pushName": push_name} if push_name else None)
        self._log(s, message)
        # Two separate events (own evt ids), same WhatsApp message.
        self.manager.emit(s, "message", dict(message))
        self.manager.emit(s, "message.any", dict(message))
        return message
