"""WAHA's WAMessage (a webhook's `message` payload, an item of a chat's message list) and the fleet
message it is: webhook-ingest reads it from webhooks, the orchestrator's history import from WAHA's
message lists, and both must make the same message of it (docs/waha.md#webhooks).

Only the fields waha-fleet reads; the rest is ignored.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .contracts.media import MessageMedia, media_kind
from .waha import is_group_chat

MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_SECONDS = MAX_MS // 1000
SHORT = 256
NOT_DOWNLOADED = "WAHA did not download the file"
LID_SUFFIX = "@lid"
PHONE_SUFFIX = "@c.us"


class Waha(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class WaMedia(Waha):
    """A message's `media`: where WAHA keeps the file for a while, or why it has none."""

    url: str | None = Field(default=None, max_length=2048)
    mimetype: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    error: Any = None


class WaReplyTo(Waha):
    id: str | None = Field(default=None, max_length=512)


class WaMessage(Waha):
    """Payload of `message` and `message.any` (and of `message.edited`, which adds `editedMessageId`)."""

    id: str = Field(min_length=1)
    timestamp: int = Field(ge=0, le=MAX_SECONDS)  # seconds
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    from_me: StrictBool = Field(alias="fromMe")
    participant: str | None = None
    body: str | None = None
    has_media: bool | None = Field(default=False, alias="hasMedia")
    ack: int | None = None
    type: str | None = Field(default=None, max_length=64)
    media: WaMedia | None = None
    reply_to: WaReplyTo | None = Field(default=None, alias="replyTo")
    source: str | None = Field(default=None, max_length=32)  # "api": sent through WAHA's API; "app": from the phone
    edited_message_id: str | None = Field(default=None, alias="editedMessageId", max_length=512)
    data: dict[str, Any] | None = Field(default=None, alias="_data")  # raw engine object

    @property
    def sender_name(self) -> str | None:
        """The sender's WhatsApp profile name, where the engine's raw object has it.

        NOWEB/GOWS (Baileys, whatsmeow) call it `pushName`, WEBJS `notifyName`.
        """
        raw = self.data or {}
        name = raw.get("pushName") or raw.get("notifyName")
        return name[:SHORT] if isinstance(name, str) and name.strip() else None

    @property
    def chat_id(self) -> str | None:
        """The chat: the peer of an own message (`to`), else the sender's side (`from`)."""
        return self.to if self.from_me else self.from_

    @property
    def sender(self) -> str | None:
        """Who wrote it, if not the user: the group member, or the person of a private chat."""
        if self.from_me:
            return None
        chat = self.from_
        return self.participant if chat and is_group_chat(chat) else (self.participant or chat)


def message_media(msg: WaMessage) -> MessageMedia | None:
    """The message's media as waha-fleet tracks it: pending while WAHA holds the file for us to
    copy, failed when WAHA could not get it (the user may retry)."""
    if not msg.has_media:
        return None
    wa = msg.media
    kind = media_kind(wa.mimetype if wa else None, msg.type or (msg.data or {}).get("type"))
    if wa is None or not wa.url:
        error = str(wa.error)[:500] if wa is not None and wa.error else NOT_DOWNLOADED
        return MessageMedia(kind=kind, mimetype=wa.mimetype if wa else None, status="failed", error=error)
    return MessageMedia(kind=kind, mimetype=wa.mimetype, filename=wa.filename, status="pending")


def message_fields(msg: WaMessage, chat_id: str, *, lids: dict[str, str] | None = None) -> dict[str, Any]:
    """The fields of the fleet `Message` this WAMessage is (`chat_name` and `received_at_ms` are the
    caller's). `lids`: lid -> phone id the caller knows, to give a lid sender's phone number too."""
    media = message_media(msg)
    sender = msg.sender
    from_lid = sender if sender and sender.endswith(LID_SUFFIX) else None
    from_phone = sender if sender and sender.endswith(PHONE_SUFFIX) else None
    if from_lid and lids:
        from_phone = lids.get(from_lid)
    return {
        "id": msg.id,
        "chat_id": chat_id,
        "from_me": msg.from_me,
        "from_": msg.from_,
        "to": msg.to,
        "participant": msg.participant,
        "body": msg.body,
        "type": msg.type or (media.kind if media else "chat"),
        "has_media": bool(msg.has_media),
        "timestamp": msg.timestamp,
        "ack": msg.ack,
        "media": media,
        "reply_to": msg.reply_to.id if msg.reply_to else None,
        "from_phone": from_phone,
        "from_lid": from_lid,
    }
