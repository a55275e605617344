"""Message ids, chat ids and acks: WAHA's conventions (reference section 0), and list paging."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
ACK_VALUES = {name: ack for ack, name in ACK_NAMES.items()}

T = TypeVar("T")


def ack_name(ack: int | None) -> str:
    return ACK_NAMES.get(ack, "UNKNOWN") if ack is not None else "UNKNOWN"


def ensure_suffix(chat_id: str) -> str:
    return chat_id if "@" in chat_id else f"{chat_id}@c.us"


def is_group(chat_id: str) -> bool:
    return chat_id.endswith("@g.us")


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


def now_ms() -> int:
    return int(time.time() * 1000)


def to_jid(chat_id: str) -> str:
    return chat_id.replace("@c.us", "@s.whatsapp.net")


def sort_page(items: Sequence[T], key: Callable[[T], Any] | None, descending: bool,
              limit: int | None, offset: int) -> list[T]:
    """Sort (stable; ties keep the newest first when descending) and cut one page."""
    out = list(items)
    if key is not None:
        if descending:
            out.reverse()
        out.sort(key=lambda x: (key(x) is not None, key(x)), reverse=descending)
    out = out[offset:]
    return out[:limit] if limit is not None else out
