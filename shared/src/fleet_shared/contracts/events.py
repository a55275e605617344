"""Facts published on `<prefix>.events` as `user.<id>.<type>`."""

from typing import Literal

from pydantic import Field

from .base import Contract
from .media import MediaKind, MessageMedia

SessionStatus = Literal["STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED"]
# WhatsApp's own limit on a message's text (and a caption's): nothing longer is a real message.
MAX_TEXT = 65536


class Message(Contract):
    """A WhatsApp message as waha-fleet stores and serves it."""

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    from_me: bool
    from_: str | None = Field(default=None, alias="from", max_length=256)
    to: str | None = Field(default=None, max_length=256)
    participant: str | None = Field(default=None, max_length=256)
    body: str | None = Field(default=None, max_length=MAX_TEXT)
    type: str = Field(default="chat", max_length=64)
    has_media: bool = False
    timestamp: int  # unix seconds, as WhatsApp gives them
    ack: int | None = None
    chat_name: str | None = Field(default=None, max_length=256)
    media: MessageMedia | None = None
    reply_to: str | None = Field(default=None, max_length=512)  # the id of the message it answers
    # When waha-fleet first heard of it (WAHA's webhook time, or the send's), in ms: it orders the
    # messages of one second (WhatsApp's timestamps are whole seconds).
    received_at_ms: int | None = Field(default=None, ge=0)
    # The sender as both WhatsApp ids, where known: WAHA may name a person by a hidden `<digits>@lid`
    # id; `from_phone` is then their `<digits>@c.us` (resolved through WAHA's lids), `from_lid` the lid.
    from_phone: str | None = Field(default=None, max_length=256)
    from_lid: str | None = Field(default=None, max_length=256)


class MessageReceived(Message):
    TYPE = "message.received"


class MessageSent(Message):
    TYPE = "message.sent"


class MessageImported(Message):
    """A message of the history WhatsApp synced at pairing, read by the orchestrator's history
    import: stored like any other, never pushed live, never counted as unread."""

    TYPE = "message.imported"


class GroupParticipant(Contract):
    id: str = Field(max_length=256)
    phone: str | None = Field(default=None, max_length=256)  # `<digits>@c.us`, when WAHA knows it
    role: Literal["participant", "admin", "superadmin"] = "participant"


MAX_PARTICIPANTS = 2048


class MemberChange(Contract):
    """Someone joined or left a group, or became an admin or no longer is one."""

    id: str = Field(max_length=256)
    phone: str | None = Field(default=None, max_length=256)
    change: Literal["join", "leave", "promote", "demote"]


class ChatUpdated(Contract):
    """What WhatsApp says about a chat itself: its name, picture, a group's participants. A field
    left out (None) is unknown and keeps what is stored; `removed` drops the chat (left the group)."""

    TYPE = "chat.updated"

    chat_id: str = Field(max_length=256)
    name: str | None = Field(default=None, max_length=256)
    picture: str | None = Field(default=None, max_length=2048)
    participants: list[GroupParticipant] | None = Field(default=None, max_length=MAX_PARTICIPANTS)
    member_changes: list[MemberChange] | None = Field(default=None, max_length=MAX_PARTICIPANTS)
    left: bool = False  # the user is no longer in this group
    updated_at_ms: int = Field(ge=0)  # when WhatsApp said it: an older word never replaces a newer one


class ContactLid(Contract):
    lid: str = Field(max_length=256)
    phone: str = Field(max_length=256)  # `<digits>@c.us`


class ContactLidsMapped(Contract):
    """People WAHA knows under both ids (`/api/{session}/lids`): the persister fills in `fromPhone`
    of their messages with it."""

    TYPE = "contact.lids_mapped"

    items: list[ContactLid] = Field(max_length=1000)


class ContactLidSeen(Contract):
    """A message came from a person WhatsApp named by a `@lid` (webhook-ingest, at most once per
    lid and process): the orchestrator asks WAHA for their phone number (`contact.lids_mapped`)."""

    TYPE = "contact.lid_seen"

    lid: str = Field(max_length=256)


class MessageAck(Contract):
    TYPE = "message.ack"

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    from_me: bool = True
    ack: int
    ack_name: str | None = None


class MessageReaction(Contract):
    """Someone reacted to a message (`reaction` is the emoji; "" takes the reaction back)."""

    TYPE = "message.reaction"

    id: str = Field(max_length=512)  # the message reacted to
    chat_id: str = Field(max_length=256)
    from_: str | None = Field(default=None, alias="from", max_length=256)  # who reacted
    from_me: bool
    reaction: str = Field(max_length=64)
    timestamp: int


class MessageEdited(Contract):
    """A message's text was edited by its sender."""

    TYPE = "message.edited"

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    body: str | None = Field(default=None, max_length=MAX_TEXT)
    edited_at: int  # unix seconds


class MessageRevoked(Contract):
    """A message was deleted for everyone: its text and media are gone."""

    TYPE = "message.revoked"

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    revoked_at: int  # unix seconds


class MessageMediaUpdated(Contract):
    """A message's media file was copied into waha-fleet's store, or could not be."""

    TYPE = "message.media"

    id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    media: MessageMedia


class ChatRead(Contract):
    """The user read a chat: its unread count starts again from zero."""

    TYPE = "chat.read"

    chat_id: str = Field(max_length=256)
    read_at: int  # unix seconds


class MediaAvailable(Contract):
    """WAHA holds a media file for a message, for a while (WHATSAPP_FILES_LIFETIME): copy it now."""

    TYPE = "media.available"

    message_id: str = Field(max_length=512)
    chat_id: str = Field(max_length=256)
    kind: MediaKind
    url: str = Field(max_length=2048)  # WAHA's `media.url`; only its path is used (on WAHA_URL)
    mimetype: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)


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
        MessageImported,
        MessageAck,
        MessageReaction,
        MessageEdited,
        MessageRevoked,
        MessageMediaUpdated,
        ChatRead,
        ChatUpdated,
        ContactLidsMapped,
        ContactLidSeen,
        MediaAvailable,
        SessionStatusReported,
        SessionActive,
        SessionStatusChanged,
        SessionQrUpdated,
    )
}

# Facts only the services act on: never forwarded to clients (the gateway's live WebSocket).
# Imported history is stored, never pushed live (a client reads it from the message list).
INTERNAL_EVENT_TYPES = frozenset(
    {SessionStatusReported.TYPE, SessionActive.TYPE, MediaAvailable.TYPE, MessageImported.TYPE, ContactLidsMapped.TYPE,
     ContactLidSeen.TYPE}
)
# What a client may be told about its own account.
PUBLIC_EVENT_TYPES: dict[str, type[Contract]] = {t: m for t, m in EVENT_TYPES.items() if t not in INTERNAL_EVENT_TYPES}
