"""The persister's answers to `chat.list` · `group.list` · `contact.list` and `message.list`: one
page of items, newest first, and the cursor of the next (older) page. The gateway answers them as
they are, so the descriptions here are the public API's (docs/openapi.json).
"""

from pydantic import Field

from .base import Contract
from .media import MediaKind, MediaStatus

UNIX_SECONDS = "Unix seconds, as WhatsApp gives them"


class MediaItem(Contract):
    kind: MediaKind
    mimetype: str | None = None
    filename: str | None = None
    size: int | None = Field(default=None, description="bytes, once known")
    caption: str | None = None
    status: MediaStatus = Field(
        description="`pending` (being copied from WhatsApp), `stored` (download it from `/messages/{id}/media`), "
        "`failed` (see `error`; `POST /messages/{id}/media/retry`)"
    )
    error: str | None = None


class Reaction(Contract):
    from_: str | None = Field(default=None, alias="from", description="who reacted (null: the user)")
    from_me: bool
    reaction: str = Field(description="the emoji")
    timestamp: int = Field(description=UNIX_SECONDS)


class MessageItem(Contract):
    id: str
    chat_id: str
    from_me: bool
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    participant: str | None = Field(default=None, description="the sender inside a group")
    from_phone: str | None = Field(
        default=None, description="the sender's phone-number id (`<digits>@c.us`), also when WhatsApp named them by a @lid"
    )
    from_lid: str | None = Field(default=None, description="the sender's hidden `<digits>@lid` id, when WhatsApp used it")
    body: str | None = None
    type: str
    has_media: bool
    timestamp: int = Field(description=UNIX_SECONDS)
    ack: int | None = Field(
        default=None, description="-1 error, 0 pending, 1 server (sent), 2 device (delivered), 3 read, 4 played"
    )
    media: MediaItem | None = None
    reply_to: str | None = Field(default=None, description="the id of the message this one answers")
    reactions: list[Reaction] = Field(default_factory=list, description="one per person, the latest")
    edited_at: int | None = Field(default=None, description=f"when the text was last edited ({UNIX_SECONDS})")
    revoked_at: int | None = Field(
        default=None, description=f"when it was deleted for everyone ({UNIX_SECONDS}); its text and media are gone"
    )


class LastMessage(Contract):
    id: str
    body: str | None = None
    from_me: bool
    timestamp: int = Field(description=UNIX_SECONDS)


class Participant(Contract):
    id: str = Field(description="`<digits>@c.us` or `<digits>@lid`")
    phone: str | None = Field(default=None, description="their phone-number id, when WhatsApp tells it")
    role: str = Field(description="participant, admin or superadmin")


class ChatItem(Contract):
    chat_id: str
    name: str | None = Field(
        default=None, description="the group's subject, the contact's name or push name; null when WhatsApp did not tell"
    )
    picture: str | None = Field(default=None, description="URL of the profile or group picture (WhatsApp's, expires)")
    phone: str | None = Field(default=None, description="for a `@lid` chat, the person's phone-number id when known")
    participants: list[Participant] | None = Field(default=None, description="a group's members (null: not known)")
    is_group: bool
    last_message: LastMessage | None = None
    unread_count: int = Field(default=0, description="messages received since the user last read the chat")
    updated_at: str | None = Field(default=None, description="when the chat last changed (ISO 8601)")


class ChatPage(Contract):
    items: list[ChatItem]
    next_cursor: str | None = Field(default=None, description="pass it back as `cursor` for the next (older) page")


class MessagePage(Contract):
    items: list[MessageItem]
    next_cursor: str | None = Field(default=None, description="pass it back as `before` for the next (older) page")
