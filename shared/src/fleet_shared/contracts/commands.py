"""What the gateway asks for: commands on `<prefix>.commands`, queries on `<prefix>.queries`.

Every one is answered through direct reply-to with a `Reply`.
"""

from pydantic import Field

from ..ids import ChatId
from .base import Contract
from .events import SessionStatus

MAX_PAGE = 200


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


class SendText(Contract):
    TYPE = "message.send"

    chat_id: ChatId
    text: str = Field(min_length=1, max_length=65536)
    reply_to: str | None = Field(default=None, max_length=512)
    idempotency_key: str | None = Field(default=None, max_length=128)


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


class ListMessages(Contract):
    TYPE = "message.list"

    chat_id: ChatId
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    before: str | None = Field(default=None, max_length=512)


# Reply payloads


class SessionView(Contract):
    user_id: str
    session: str
    status: SessionStatus
    phone_number: str | None = None
    last_error: str | None = None
    last_activity: str | None = None
    updated_at: str | None = None


class QrView(Contract):
    status: SessionStatus
    qr: dict | None = None  # {"value", "mimetype", "data"}


class SentView(Contract):
    id: str
    chat_id: str
    timestamp: int


COMMAND_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c for c in (StartSession, StopSession, RestartSession, LogoutSession, GetQr, SendText)
}
QUERY_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c for c in (GetSession, ListChats, ListGroups, ListContacts, ListMessages)
}
