"""What the gateway asks for: commands on `<prefix>.commands`, queries on `<prefix>.queries`.

Every one is answered through direct reply-to with a `Reply`.
"""

from typing import Literal, Self

from pydantic import Field, model_validator

from ..ids import ChatId, MessageId
from .base import Contract
from .events import MAX_TEXT, SessionStatus
from .media import MediaRef, MessageMedia
from .stream import ListEvents
from .webhooks import WEBHOOK_TYPES

MAX_PAGE = 200
MAX_READ_IDS = 100


class StartSession(Contract):
    TYPE = "session.start"


class StopSession(Contract):
    TYPE = "session.stop"


class RestartSession(Contract):
    TYPE = "session.restart"


class LogoutSession(Contract):
    TYPE = "session.logout"


class GetQr(Contract):
    """Start the session if needed and answer its current QR (or that it is WORKING)."""

    TYPE = "session.qr"


class RequestPairingCode(Contract):
    """Pair by phone number instead of a QR (WAHA's request-code): only while the session asks for a QR."""

    TYPE = "session.pairing_code"

    phone_number: str = Field(pattern=r"^[0-9]{7,15}$")  # international, digits only (E.164 without +)


class ImportHistory(Contract):
    """Import the chats and newest messages WhatsApp synced (again): runs in the background."""

    TYPE = "session.import_history"


class OutgoingMedia(Contract):
    """A file to send, already in the media store (the gateway put it there: ADR 0010)."""

    kind: Literal["image", "document", "voice", "video"]
    mimetype: str = Field(max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    stored: MediaRef


class SendMessage(Contract):
    """A text, or a media file with an optional caption (`text`)."""

    TYPE = "message.send"

    chat_id: ChatId
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    media: OutgoingMedia | None = None
    reply_to: MessageId | None = None
    idempotency_key: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _text_or_media(self) -> Self:
        if self.text is None and self.media is None:
            raise ValueError("a message needs a text or a media file")
        return self


class ReactToMessage(Contract):
    TYPE = "message.react"

    message_id: MessageId
    reaction: str = Field(max_length=16)  # an emoji; "" takes the reaction back


class EditMessage(Contract):
    TYPE = "message.edit"

    message_id: MessageId
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class DeleteMessage(Contract):
    """Delete one of the user's own messages for everyone."""

    TYPE = "message.delete"

    message_id: MessageId


class MarkChatRead(Contract):
    """Tell WhatsApp the user read the chat (WAHA's sendSeen); `message_ids`: only those."""

    TYPE = "chat.mark_read"

    chat_id: ChatId
    message_ids: list[MessageId] | None = Field(default=None, max_length=MAX_READ_IDS)


class SetTyping(Contract):
    TYPE = "chat.typing"

    chat_id: ChatId
    typing: bool


class RetryMedia(Contract):
    """Copy a message's media from WAHA again (after it `failed`)."""

    TYPE = "media.retry"

    message_id: MessageId


class GetSession(Contract):
    TYPE = "session.get"


class ListChats(Contract):
    TYPE = "chat.list"

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=512)


class ListGroups(ListChats):
    TYPE = "group.list"


class ListContacts(ListChats):
    TYPE = "contact.list"


class GetMedia(Contract):
    """A message's media record: what the gateway needs to serve its bytes."""

    TYPE = "media.get"

    message_id: MessageId


class ListMessages(Contract):
    TYPE = "message.list"

    chat_id: ChatId
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    before: str | None = Field(default=None, max_length=512)


# Reply payloads


HistoryImportState = Literal["idle", "running", "done", "failed"]


class HistoryImportView(Contract):
    """How far the import of the user's history is: chats done and messages imported so far."""

    state: HistoryImportState = "idle"
    chats: int = 0
    messages: int = 0
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class PairingCodeView(Contract):
    code: str  # e.g. `ABCD-EFGH`: typed on the phone (Linked devices, link with phone number)


class SessionView(Contract):
    user_id: str
    session: str
    status: SessionStatus
    phone_number: str | None = None
    last_error: str | None = None
    last_activity: str | None = None
    updated_at: str | None = None
    history_import: HistoryImportView = Field(default_factory=HistoryImportView)


class QrView(Contract):
    status: SessionStatus
    qr: dict | None = None  # {"value", "mimetype", "data"}


class SentView(Contract):
    id: str
    chat_id: str
    timestamp: int


class MessageActionView(Contract):
    """What a reaction, an edit, a deletion or a media retry answers: done for that message."""

    id: str
    chat_id: str
    status: Literal["done", "pending"] = "done"


class ChatActionView(Contract):
    chat_id: str


class MediaRecord(Contract):
    """`media.get`'s answer: the message's media, and where its bytes are when stored."""

    id: str
    chat_id: str
    media: MessageMedia


COMMAND_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c
    for c in (
        StartSession, StopSession, RestartSession, LogoutSession, GetQr, RequestPairingCode, ImportHistory, SendMessage, ReactToMessage, EditMessage,
        DeleteMessage, MarkChatRead, SetTyping, RetryMedia,
    )
}
QUERY_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c for c in (GetSession, ListChats, ListGroups, ListContacts, ListMessages, GetMedia, ListEvents)
} | WEBHOOK_TYPES
