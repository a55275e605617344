"""Facts published on `<prefix>.events` as `user.<id>.<type>`."""

from typing import Literal

from pydantic import Field

from .base import Contract

SessionStatus = Literal["STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED"]


class Message(Contract):
    """A WhatsApp message as waha-fleet stores and serves it."""

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    from_me: bool
    from_: str | None = Field(default=None, alias="from", max_length=256)
    to: str | None = Field(default=None, max_length=256)
    participant: str | None = Field(default=None, max_length=256)
    body: str | None = None
    type: str = "chat"
    has_media: bool = False
    timestamp: int  # unix seconds, as WhatsApp gives them
    ack: int | None = None
    chat_name: str | None = None


class MessageReceived(Message):
    TYPE = "message.received"


class MessageSent(Message):
    TYPE = "message.sent"


class MessageAck(Contract):
    TYPE = "message.ack"

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    from_me: bool = True
    ack: int
    ack_name: str | None = None


class SessionStatusReported(Contract):
    """WAHA said (through its webhook) that a session is now in `status`; the orchestrator decides."""

    TYPE = "session.status_reported"

    status: str
    phone_number: str | None = None
    push_name: str | None = None
    reported_at_ms: int
    waha_event_id: str


class SessionActive(Contract):
    """A message to or from the user went through webhook-ingest: their session is in use (the
    orchestrator's idle clock). `occurredAt` is the message's time. Sent at most once per user per
    ACTIVITY_REPORT_INTERVAL by each webhook-ingest process, not once per message."""

    TYPE = "session.active"

    message_id: str = Field(max_length=512)


class SessionStatusChanged(Contract):
    TYPE = "session.status_changed"

    status: SessionStatus
    previous_status: SessionStatus | None = None
    phone_number: str | None = None
    last_error: str | None = None


class SessionQrUpdated(Contract):
    TYPE = "session.qr_updated"

    value: str


EVENT_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c
    for c in (
        MessageReceived,
        MessageSent,
        MessageAck,
        SessionStatusReported,
        SessionActive,
        SessionStatusChanged,
        SessionQrUpdated,
    )
}

# Facts only the services act on: never forwarded to clients (the gateway's live WebSocket).
INTERNAL_EVENT_TYPES = frozenset({SessionStatusReported.TYPE, SessionActive.TYPE})
# What a client may be told about its own account.
PUBLIC_EVENT_TYPES: dict[str, type[Contract]] = {t: m for t, m in EVENT_TYPES.items() if t not in INTERNAL_EVENT_TYPES}
