"""User ids, chat ids and WAHA session names: the rules that keep routing keys and WAHA happy."""

import hashlib
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A person, a group, a hidden linked id, a channel, or status@broadcast.
CHAT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}@(c\.us|g\.us|lid|newsletter|broadcast)$")
# A message's serialized id (docs/waha.md#serialized-ids): `{fromMe}_{chatId}_{rawId}[_{participant}]`.
MESSAGE_ID_RE = re.compile(
    r"^(true|false)_[A-Za-z0-9_-]{1,64}@(c\.us|g\.us|lid|newsletter|broadcast)_[A-Za-z0-9]{1,128}"
    r"(_[A-Za-z0-9_-]{1,64}@(c\.us|lid|s\.whatsapp\.net))?$"
)
SESSION_NAME_PREFIX = "wf_"
_SESSION_NAME_MAX = 54  # WAHA's limit
_READABLE_MAX = _SESSION_NAME_MAX - len(SESSION_NAME_PREFIX) - 3


class InvalidIdError(ValueError):
    pass


def validate_user_id(value: str) -> str:
    if not isinstance(value, str) or not USER_ID_RE.fullmatch(value):
        raise InvalidIdError("user id must match ^[A-Za-z0-9_-]{1,64}$")
    return value


def normalize_chat_id(value: str) -> str:
    """A bare phone number means a person, as in WAHA; anything else must be a full chat id."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and 5 <= len(value) <= 20:
        value = f"{value}@c.us"
    if not isinstance(value, str) or not CHAT_ID_RE.fullmatch(value):
        raise InvalidIdError("chatId must look like <digits>@c.us, <digits>@g.us or <id>@lid")
    return value


def validate_message_id(value: str) -> str:
    if not isinstance(value, str) or not MESSAGE_ID_RE.fullmatch(value):
        raise InvalidIdError("message id must be a serialized WhatsApp id: {fromMe}_{chatId}_{rawId}")
    return value


UserId = Annotated[str, StringConstraints(pattern=USER_ID_RE.pattern)]
MessageId = Annotated[str, AfterValidator(validate_message_id)]
ChatId = Annotated[str, AfterValidator(normalize_chat_id)]


def session_name_for(user_id: str) -> str:
    """The user's WAHA session name: stable, injective, within WAHA's 54 characters.

    Short ids stay readable (`wf_alice`); longer ones keep a readable head and a hash, and are
    exactly 52 characters long, a length no short id reaches, so the two forms never collide.
    """
    validate_user_id(user_id)
    if len(user_id) <= _READABLE_MAX - 1:
        return f"{SESSION_NAME_PREFIX}{user_id}"
    digest = hashlib.sha256(user_id.encode()).hexdigest()[:24]
    return f"{SESSION_NAME_PREFIX}{user_id[:24]}_{digest}"
