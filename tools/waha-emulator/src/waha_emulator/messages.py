"""WAMessage payloads, message ids and the per-session message log views (chats, history)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}


def ack_name(ack: int | None) -> str:
    return ACK_NAMES.get(ack, "UNKNOWN") if ack is not None else "UNKNOWN"


def ensure_suffix(chat_id: str) -> str:
    return chat_id if "@" in chat_id else f"{chat_id}@c.us"


# The raw part of a message id (no `_`, which separates the parts of a serialized id).
RAW_ID_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")


def new_sent_raw_id() -> str:
    # WhatsApp Web style key id of an own message.
    return "3EB0" + secrets.token_hex(9).upper()


def new_inbound_raw_id() -> str:
    return secrets.token_hex(10).upper()


def serialized_id(from_me: bool, chat_id: str, raw_id: str, participant: str | None = None) -> str:
    base = f"{'true' if from_me else 'false'}_{chat_id}_{raw_id}"
    return f"{base}_{participant}" if participant else base


def parse_serialized_id(message_id: str) -> tuple[bool, str, str, str | None] | None:
    parts = message_id.split("_")
    if len(parts) < 3 or parts[0] not in ("true", "false"):
        return None
    participant = "_".join(parts[3:]) or None
    return parts[0] == "true", parts[1], parts[2], participant


def now_s() -> int:
    return int(time.time())


def wa_message(*, message_id: str, from_: str | None, to: str | None, from_me: bool, body: str, source: str,
               ack: int, participant: str | None = None, reply_to: dict | None = None,
               timestamp: int | None = None, data: dict | None = None) -> dict[str, Any]:
    return {
        "id": message_id,
        "timestamp": timestamp if timestamp is not None else now_s(),
        "from": from_,
        "to": to,
        "fromMe": from_me,
        "source": source,
        "participant": participant,
        "author": None,
        "body": body,
        "hasMedia": False,
        "media": None,
        "ack": ack,
        "ackName": ack_name(ack),
        "location": None,
        "vCards": [],
        "replyTo": reply_to,
        "_data": data if data is not None else {},
    }


def chat_of(message: dict[str, Any]) -> str:
    return message["to"] if message["fromMe"] else message["from"]


def to_jid(chat_id: str) -> str:
    return chat_id.replace("@c.us", "@s.whatsapp.net")


def ack_payload(message: dict[str, Any] | None, message_id: str, ack: int, me_id: str | None) -> dict[str, Any]:
    chat: str | None
    if message is not None:
        chat = chat_of(message)
        participant = message.get("participant")
        from_me = message["fromMe"]
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


def chats_view(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chats: dict[str, dict[str, Any]] = {}
    for m in messages:
        chat = chat_of(m)
        entry = chats.setdefault(chat, {"id": chat, "name": None, "conversationTimestamp": 0, "unreadCount": 0})
        entry["conversationTimestamp"] = max(entry["conversationTimestamp"], m["timestamp"])
        entry["unreadCount"] = 0 if m["fromMe"] else entry["unreadCount"] + 1
    return list(chats.values())


def sort_page(items: list[dict[str, Any]], sort_by: str | None, sort_order: str | None,
              limit: int | None, offset: int) -> list[dict[str, Any]]:
    if sort_by:
        reverse = (sort_order or "desc").lower() == "desc"
        # Reversing first keeps ties (same second) newest first in a descending sort.
        items = sorted(reversed(items) if reverse else items,
                       key=lambda x: (x.get(sort_by) is not None, x.get(sort_by)), reverse=reverse)
    items = items[offset:]
    return items[:limit] if limit is not None else items
