"""Sent and received messages: sends (text and media), inbound messages from the 'phone', acks."""

from __future__ import annotations

import asyncio
from typing import Any

from .config import EmulatorConfig
from .media import FileStore, Media
from .messages import ensure_suffix, is_group, new_inbound_raw_id, new_sent_raw_id, now_ms, now_s
from .state import Session, SessionManager, StateConflict, Status
from .store import Contact, Record, lid_for
from .wamessage import ack_payload, baileys_record, media_view, reply_to, wa_message


def me_id(s: Session) -> str | None:
    return s.linked_me["id"] if s.linked_me else None


class Messaging:
    def __init__(self, manager: SessionManager, config: EmulatorConfig, files: FileStore) -> None:
        self.manager = manager
        self.config = config
        self.files = files

    # -- reading -----------------------------------------------------------------------------

    def media_of(self, s: Session, rec: Record, download: bool) -> dict[str, Any] | None:
        """WAHA's `media`: the attachment saved as a file (again, if it expired), or None without a download."""
        if rec.media is None or not download:
            return None
        key = self.files.save(s.name, rec.raw_id, rec.media)
        return media_view(rec.media, self.config.files_base_url + key)

    def view(self, s: Session, rec: Record, download: bool = True) -> dict[str, Any]:
        return wa_message(rec, me_id(s), self.media_of(s, rec, download))

    def quote(self, s: Session, message_id: str | None) -> dict[str, Any] | None:
        if not message_id:
            return None
        return reply_to(s.store.find(message_id), message_id, me_id(s))

    # -- sending -----------------------------------------------------------------------------

    def _send(self, s: Session, rec: Record, request: dict[str, Any]) -> dict[str, Any]:
        s.activity = now_ms()
        s.store.add(rec)
        s.sent.append((request, rec))
        self.manager.emit(s, "message.any", self.view(s, rec))
        self.manager.spawn(s, self._acks(s, rec))
        if self.config.send_shape == "noweb":
            return baileys_record(rec, status="PENDING")
        out = wa_message(rec, me_id(s), None)
        out["_data"] = baileys_record(rec, status="PENDING")
        return out

    def send_text(self, s: Session, chat_id: str, text: str, reply_to_id: str | None,
                  raw_id: str | None = None) -> dict[str, Any]:
        """Record an API send on a WORKING session; answer in the configured engine shape.

        `raw_id` is sendText's optional `id` (from new-message-id). The emulator does not
        deduplicate by it: sending twice with one id records two messages.
        """
        chat_id = ensure_suffix(chat_id)
        rec = Record(raw_id=raw_id or new_sent_raw_id(), chat_id=chat_id, from_me=True, timestamp=now_s(),
                     body=text, ack=0, source="api", reply_to=self.quote(s, reply_to_id))
        return self._send(s, rec, {"kind": "text", "chatId": chat_id, "text": text, "reply_to": reply_to_id})

    def send_media(self, s: Session, kind: str, chat_id: str, media: Media, caption: str | None,
                   reply_to_id: str | None, raw_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """`kind` is the endpoint's (image, file, voice, video); `media.kind` the WhatsApp message's."""
        chat_id = ensure_suffix(chat_id)
        rec = Record(raw_id=raw_id or new_sent_raw_id(), chat_id=chat_id, from_me=True, timestamp=now_s(),
                     body=caption or None, ack=0, source="api", media=media, reply_to=self.quote(s, reply_to_id))
        request = {"kind": kind, "chatId": chat_id, "text": None, "caption": caption, "reply_to": reply_to_id,
                   "mimetype": media.mimetype, "filename": media.filename, "size": media.size,
                   "sha256": media.sha256, **extra}
        return self._send(s, rec, request)

    async def _acks(self, s: Session, rec: Record) -> None:
        for ack in (1, 2):  # SERVER, then DEVICE
            await asyncio.sleep(self.config.ack_delay)
            if s.status != Status.WORKING:
                return
            self.set_ack(s, rec.id, ack)

    def set_ack(self, s: Session, message_id: str, ack: int) -> dict[str, Any]:
        rec = s.store.find(message_id)
        if rec is not None:
            rec.ack = ack
        payload = ack_payload(rec, message_id, ack, me_id(s))
        self.manager.emit(s, "message.ack", payload)
        return payload

    def sent_view(self, s: Session) -> list[dict[str, Any]]:
        out = []
        for request, rec in s.sent:
            item = wa_message(rec, me_id(s), None)
            out.append({**item, "text": None, "caption": None, "mimetype": None, "filename": None,
                        "size": None, "sha256": None, **request})
        return out

    # -- what the other side sends (control API) -------------------------------------------------

    def sender(self, s: Session, who: str, as_lid: bool) -> str:
        """The chat id of a person; with `as_lid`, their @lid id (mapped to the phone number in the store)."""
        pn = ensure_suffix(who)
        if not as_lid or not pn.endswith("@c.us"):
            return pn
        lid = s.store.pns.get(pn) or lid_for(s.name, pn)
        s.store.map_lid(lid, pn)
        return lid

    def inbound(self, s: Session, from_: str, body: str | None, participant: str | None, raw_id: str | None,
                push_name: str | None = None, media: Media | None = None, reply_to_id: str | None = None,
                as_lid: bool = False) -> dict[str, Any]:
        if s.status != Status.WORKING:
            raise StateConflict(s, [str(Status.WORKING)])
        group = is_group(ensure_suffix(from_))
        chat_id = ensure_suffix(from_) if group else self.sender(s, from_, as_lid)
        author = self.sender(s, participant, as_lid) if participant and group else None
        rec = Record(raw_id=raw_id or new_inbound_raw_id(), chat_id=chat_id, from_me=False, timestamp=now_s(),
                     body=body, ack=2, participant=author, media=media, reply_to=self.quote(s, reply_to_id),
                     push_name=push_name)
        s.activity = now_ms()
        s.store.add(rec)
        if push_name:
            contact = s.store.contacts.setdefault(author or chat_id, Contact(author or chat_id))
            contact.pushname = push_name
        message = self.view(s, rec)
        # Two separate events (own evt ids), same WhatsApp message.
        self.manager.emit(s, "message", message)
        self.manager.emit(s, "message.any", dict(message))
        return message
