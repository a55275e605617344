"""Stored records rendered the way WAHA shows them: WAMessage, replyTo, the raw Baileys record in `_data`."""

from __future__ import annotations

import base64
from typing import Any

from .media import CONTENT_KEYS, Media
from .messages import ack_name, parse_serialized_id, to_jid
from .store import Record

# Baileys' WebMessageInfo.Status names, by WAHA ack.
BAILEYS_STATUS = {-1: "ERROR", 0: "PENDING", 1: "SERVER_ACK", 2: "DELIVERY_ACK", 3: "READ", 4: "PLAYED"}


def media_content(media: Media, caption: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "url": f"https://mmg.whatsapp.net/v/t62.7118-24/{media.seed[:24]}.enc",
        "mimetype": media.mimetype,
        "fileSha256": base64.b64encode(media.digest).decode(),
        "fileLength": str(media.size),
    }
    if media.kind in ("image", "video", "document") and caption:
        out["caption"] = caption
    if media.kind == "document":
        out["fileName"] = media.filename
    if media.kind in ("audio", "ptt"):
        out["ptt"] = media.kind == "ptt"
    return out


def content(rec: Record) -> dict[str, Any]:
    """The Baileys message content of a record (`message` in WebMessageInfo)."""
    context = None
    if rec.reply_to is not None:
        context = {"stanzaId": rec.reply_to["id"], "participant": to_jid(rec.reply_to["participant"] or ""),
                   "quotedMessage": rec.reply_to["_data"]}
    if rec.media is not None:
        inner = media_content(rec.media, rec.body)
        if context:
            inner["contextInfo"] = context
        return {CONTENT_KEYS[rec.media.kind]: inner}
    if rec.from_me or context:
        inner = {"text": rec.body or ""}
        if context:
            inner["contextInfo"] = context
        return {"extendedTextMessage": inner}
    return {"conversation": rec.body or ""}


def baileys_record(rec: Record, status: str | None = None) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": to_jid(rec.chat_id), "fromMe": rec.from_me, "id": rec.raw_id}
    if rec.participant:
        key["participant"] = to_jid(rec.participant)
    out: dict[str, Any] = {
        "key": key,
        "message": content(rec),
        "messageTimestamp": str(rec.timestamp) if rec.from_me else rec.timestamp,
        "status": status or BAILEYS_STATUS.get(rec.ack, "PENDING"),
    }
    if rec.push_name:
        out["pushName"] = rec.push_name
    if rec.reactions:
        out["reactions"] = [dict(r) for r in rec.reactions]
    return out


def media_view(media: Media, url: str | None) -> dict[str, Any]:
    return {"url": url, "mimetype": media.mimetype, "filename": media.filename, "error": None}


def wa_message(rec: Record, me_id: str | None, media: dict[str, Any] | None = None) -> dict[str, Any]:
    """A WAMessage; `media` is the downloaded file (None: not downloaded, as with downloadMedia=false)."""
    return {
        "id": rec.id,
        "timestamp": rec.timestamp,
        "from": me_id if rec.from_me else rec.chat_id,
        "to": rec.chat_id if rec.from_me else me_id,
        "fromMe": rec.from_me,
        "source": rec.source,
        "participant": rec.participant if not rec.from_me else None,
        "author": None,
        "body": rec.body,
        "hasMedia": rec.media is not None,
        "media": media,
        "ack": rec.ack,
        "ackName": ack_name(rec.ack),
        "location": None,
        "vCards": [],
        "replyTo": rec.reply_to,
        "_data": baileys_record(rec),
    }


def reply_to(target: Record | None, message_id: str, me_id: str | None) -> dict[str, Any]:
    """WAHA's replyTo from NOWEB's contextInfo: `id` is the quoted message's raw id (stanzaId)."""
    if target is not None:
        sender = me_id if target.from_me else (target.participant or target.chat_id)
        quoted = content(target)
        return {"id": target.raw_id, "participant": sender, "body": target.body,
                "hasMedia": target.media is not None, "media": None, "_data": quoted}
    parsed = parse_serialized_id(message_id)
    if parsed is None:
        return {"id": message_id, "participant": None, "body": None, "hasMedia": False, "media": None, "_data": {}}
    from_me, chat, raw, participant = parsed
    return {"id": raw, "participant": me_id if from_me else (participant or chat), "body": None,
            "hasMedia": False, "media": None, "_data": {}}


def ack_payload(rec: Record | None, message_id: str, ack: int, me_id: str | None) -> dict[str, Any]:
    chat: str | None
    participant: str | None
    if rec is not None:
        chat, participant, from_me = rec.chat_id, (rec.participant if not rec.from_me else None), rec.from_me
    else:
        parsed = parse_serialized_id(message_id)
        from_me, chat, participant = (parsed[0], parsed[1], parsed[3]) if parsed else (True, None, None)
    return {
        "id": message_id,
        "from": chat,
        "to": me_id,
        "participant": participant,
        "fromMe": from_me,
        "ack": ack,
        "ackName": ack_name(ack),
        "_data": {},
    }
