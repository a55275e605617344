"""Routing keys: `user.<userId>.<aggregate>.<action>`, the only place that builds or reads them."""

import re
from typing import NamedTuple

from .ids import validate_user_id

_PART_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class UserKey(NamedTuple):
    user_id: str
    aggregate: str
    action: str

    @property
    def type(self) -> str:
        """The envelope type this key carries, e.g. `message.received`."""
        return f"{self.aggregate}.{self.action}"


def user_key(user_id: str, message_type: str) -> str:
    """`user_key("alice", "message.received")` -> `user.alice.message.received`."""
    validate_user_id(user_id)
    aggregate, _, action = message_type.partition(".")
    if not (_PART_RE.fullmatch(aggregate) and _PART_RE.fullmatch(action)):
        raise ValueError(f"message type must be <aggregate>.<action> in lower snake case: {message_type!r}")
    return f"user.{user_id}.{aggregate}.{action}"


def parse_user_key(key: str) -> UserKey:
    parts = key.split(".")
    if len(parts) != 4 or parts[0] != "user":
        raise ValueError(f"not a user routing key: {key!r}")
    _, user_id, aggregate, action = parts
    validate_user_id(user_id)
    if not (_PART_RE.fullmatch(aggregate) and _PART_RE.fullmatch(action)):
        raise ValueError(f"not a user routing key: {key!r}")
    return UserKey(user_id, aggregate, action)


def one_user_binding(user_id: str) -> str:
    """Binding key for every event of one user."""
    return f"user.{validate_user_id(user_id)}.#"


def all_users_binding(message_type: str) -> str:
    """Binding key for one event type of every user, e.g. `user.*.message.received`."""
    return "user.*." + message_type


# Fleet-wide questions that belong to no user (operators' reads): `system.admin.<aggregate>.<action>`.
ADMIN_KEY_PREFIX = "system.admin."


def admin_key(message_type: str) -> str:
    """`admin_key("sessions.list")` -> `system.admin.sessions.list`."""
    aggregate, _, action = message_type.partition(".")
    if not (_PART_RE.fullmatch(aggregate) and _PART_RE.fullmatch(action)):
        raise ValueError(f"message type must be <aggregate>.<action> in lower snake case: {message_type!r}")
    return ADMIN_KEY_PREFIX + message_type


def parse_admin_key(key: str) -> str:
    """`system.admin.sessions.list` -> the message type `sessions.list`; ValueError for anything else."""
    if not key.startswith(ADMIN_KEY_PREFIX):
        raise ValueError(f"not an admin routing key: {key!r}")
    message_type = key.removeprefix(ADMIN_KEY_PREFIX)
    if admin_key(message_type) != key:
        raise ValueError(f"not an admin routing key: {key!r}")
    return message_type
