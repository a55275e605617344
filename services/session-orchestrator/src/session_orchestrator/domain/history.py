"""What the history import makes of WAHA's answers, as pure functions: chats, groups, people's two
ids and messages as fleet facts (no I/O)."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from fleet_shared.contracts.events import ChatUpdated, ContactLid, GroupParticipant, MessageImported
from fleet_shared.ids import CHAT_ID_RE, MESSAGE_ID_RE
from fleet_shared.wamessage import LID_SUFFIX, PHONE_SUFFIX, WaMessage, message_fields

WHATSAPP_SUFFIX = "@s.whatsapp.net"  # Baileys' jid of a phone number


def phone_id(jid: object) -> str | None:
    """A phone number's chat id (`<digits>@c.us`) from any of WhatsApp's spellings of it."""
    if not isinstance(jid, str):
        return None
    digits = jid.removesuffix(PHONE_SUFFIX).removesuffix(WHATSAPP_SUFFIX)
    return digits + PHONE_SUFFIX if digits.isdigit() else None


def chat_id_of(chat: dict) -> str | None:
    chat_id = chat.get("id")
    return chat_id if isinstance(chat_id, str) and CHAT_ID_RE.fullmatch(chat_id) else None


def chat_info(chat: dict, at_ms: int) -> ChatUpdated | None:
    """A chats-overview item's name and picture."""
    chat_id = chat_id_of(chat)
    if chat_id is None:
        return None
    name, picture = chat.get("name"), chat.get("picture")
    return ChatUpdated(
        chat_id=chat_id,
        name=name[:256] if isinstance(name, str) and name.strip() else None,
        picture=picture if isinstance(picture, str) and len(picture) <= 2048 else None,
        updated_at_ms=at_ms,
    )


def _role(admin: object) -> Literal["participant", "admin", "superadmin"]:
    return "superadmin" if admin == "superadmin" else "admin" if admin == "admin" else "participant"


def group_info(group: dict, at_ms: int) -> ChatUpdated | None:
    """A group's subject and participants (Baileys' GroupMetadata, as NOWEB answers `/groups`)."""
    chat_id = chat_id_of(group)
    if chat_id is None:
        return None
    participants = []
    for p in group.get("participants") or []:
        jid = p.get("id") if isinstance(p, dict) else None
        member = phone_id(jid) or (jid if isinstance(jid, str) and jid.endswith(LID_SUFFIX) else None)
        if member is None:
            continue
        phone = phone_id(p.get("phoneNumber")) or (member if member.endswith(PHONE_SUFFIX) else None)
        participants.append(GroupParticipant(id=member[:256], phone=phone, role=_role(p.get("admin"))))
    subject = group.get("subject")
    return ChatUpdated(
        chat_id=chat_id,
        name=subject[:256] if isinstance(subject, str) and subject.strip() else None,
        participants=participants[:2048],
        updated_at_ms=at_ms,
    )


def lid_pairs(items: list[dict]) -> list[ContactLid]:
    """WAHA's `[{lid, pn}]`, the pairs that name both."""
    pairs = []
    for item in items:
        lid, phone = item.get("lid"), phone_id(item.get("pn"))
        if isinstance(lid, str) and lid.endswith(LID_SUFFIX) and phone:
            pairs.append(ContactLid(lid=lid, phone=phone))
    return pairs


def imported_message(raw: dict, chat_id: str, lids: dict[str, str]) -> MessageImported | None:
    """One item of a chat's message list as an imported message; None for what is no message the
    API could name (refused, as webhook-ingest refuses it)."""
    try:
        msg = WaMessage.model_validate(raw)
        message = MessageImported(**message_fields(msg, chat_id, lids=lids))
    except ValidationError:
        return None
    if not MESSAGE_ID_RE.fullmatch(message.id):
        return None
    return message


def occurred_at(message: Any) -> datetime:
    return datetime.fromtimestamp(message.timestamp, UTC)
