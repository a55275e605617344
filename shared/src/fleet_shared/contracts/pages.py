"""The persister's answers to `chat.list` · `group.list` · `contact.list` and `message.list`: one
page of items, newest first, and the cursor of the next (older) page. The gateway answers them as
they are, so the descriptions here are the public API's (docs/openapi.json).
"""

from pydantic import Field

from .base import Contract

UNIX_SECONDS = "Unix seconds, as WhatsApp gives them"


class MessageItem(Contract):
    id: str
    chat_id: str
    from_me: bool
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    participant: str | None = Field(default=None, description="the sender inside a group")
    body: str | None = None
    type: str
    has_media: bool
    timestamp: int = Field(description=UNIX_SECONDS)
    ack: int | None = Field(
        default=None, description="-1 error, 0 pending, 1 server (sent), 2 device (delivered), 3 read, 4 played"
    )


class LastMessage(Contract):
    id: str
    body: str | None = None
    from_me: bool
    timestamp: int = Field(description=UNIX_SECONDS)


class ChatItem(Contract):
    chat_id: str
    name: str | None = Field(default=None, description="the chat's name when a message told it, else null")
    is_group: bool
    last_message: LastMessage | None = None
    updated_at: str | None = Field(default=None, description="when the chat last changed (ISO 8601)")


class ChatPage(Contract):
    items: list[ChatItem]
    next_cursor: str | None = Field(default=None, description="pass it back as `cursor` for the next (older) page")


class MessagePage(Contract):
    items: list[MessageItem]
    next_cursor: str | None = Field(default=None, description="pass it back as `before` for the next (older) page")
