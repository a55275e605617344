"""WAHA's conventions as waha-fleet relies on them: who a session belongs to, WhatsApp's ids and
phone numbers, and the webhook signature. webhook-ingest and the orchestrator both use these; the
WAHA emulator has its own (it must not share our understanding of WAHA: ADR 0009).
"""

import hashlib
import hmac
import re
from typing import Any, NamedTuple

from .ids import InvalidIdError, session_name_for, validate_user_id

# The orchestrator creates each session with `config.metadata = {USER_ID_METADATA: <userId>}`.
USER_ID_METADATA = "fleet.userId"


def session_owner(session: object, metadata: object) -> str | None:
    """The user a WAHA session belongs to: its metadata names a user whose session name it has.

    The metadata alone is not trusted: a session misconfigured (or made by hand) with another
    user's id, or another system's session, belongs to nobody here.
    """
    user_id = metadata.get(USER_ID_METADATA) if isinstance(metadata, dict) else None
    if not isinstance(user_id, str):
        return None
    try:
        validate_user_id(user_id)
    except InvalidIdError:
        return None
    return user_id if session == session_name_for(user_id) else None


# ---- chats and messages --------------------------------------------------------------------

GROUP, CONTACT, OTHER = "group", "contact", "other"


def is_group_chat(chat_id: str) -> bool:
    return chat_id.endswith("@g.us")


def chat_kind(chat_id: str) -> str:
    """`group` for @g.us, `contact` for a person (@c.us, @lid), `other` (channels, status broadcast)."""
    if is_group_chat(chat_id):
        return GROUP
    if chat_id.endswith(("@c.us", "@lid", "@s.whatsapp.net")):
        return CONTACT
    return OTHER


class SerializedId(NamedTuple):
    """A message's serialized id, `{fromMe}_{chatId}_{rawId}[_{participant}]` (docs/waha.md#serialized-ids)."""

    from_me: bool
    chat_id: str
    raw_id: str
    participant: str | None = None

    def with_raw_id(self, raw_id: str) -> str:
        """The serialized id of another message of the same sender in the same chat (WAHA's edits
        and revokes name the message they change by its raw id only)."""
        return serialized_id(self.from_me, self.chat_id, raw_id, self.participant)


_SERIALIZED_ID_RE = re.compile(r"^(true|false)_([^_@]+(?:_[^_@]+)*@[a-z.]+)_([A-Za-z0-9]+)(?:_(.+@[a-z.]+))?$")


def serialized_id(from_me: bool, chat_id: str, raw_id: str, participant: str | None = None) -> str:
    tail = f"_{participant}" if participant else ""
    return f"{'true' if from_me else 'false'}_{chat_id}_{raw_id}{tail}"


def parse_serialized_id(value: str) -> SerializedId | None:
    match = _SERIALIZED_ID_RE.match(value)
    if match is None:
        return None
    return SerializedId(match.group(1) == "true", match.group(2), match.group(3), match.group(4))


def phone_number(me_id: Any) -> str | None:
    """`79111111111@c.us` -> `79111111111`; anything else (a `@lid`, nothing) is no phone number."""
    if not isinstance(me_id, str) or not me_id.endswith("@c.us"):
        return None
    return me_id.removesuffix("@c.us") or None


# ---- webhook signature ---------------------------------------------------------------------

SIGNATURE_HEADER = "x-webhook-hmac"
ALGORITHM_HEADER = "x-webhook-hmac-algorithm"
ALGORITHM = "sha512"


def sign(key: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA512 of the exact raw body, as WAHA signs its webhooks."""
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def keyed_hmac(key: str) -> hmac.HMAC:
    """An HMAC-SHA512 keyed with `key` and fed nothing yet, for `verify_keyed`: keying one costs
    about as much as hashing a webhook, so a verifier that sees a key often keeps it keyed."""
    return hmac.new(key.encode(), digestmod=hashlib.sha512)


# webhook-ingest's webhook endpoint; each session posts to `<WEBHOOK_PATH>/<session>`.
WEBHOOK_PATH = "/webhooks/waha"
SESSION_KEY_CONTEXT = b"waha-fleet session webhook key v1:"


def session_webhook_key(fleet_key: str, session: str) -> str:
    """The key one session's webhooks are signed with, derived from the fleet's (WEBHOOK_HMAC_KEY).

    WAHA holds only these (each session's config carries its own), so a key read out of WAHA speaks
    for that one session; the fleet key never leaves the orchestrator and webhook-ingest.
    """
    return hmac.new(fleet_key.encode(), SESSION_KEY_CONTEXT + session.encode(), hashlib.sha256).hexdigest()


def signed_headers(key: str, body: bytes) -> dict[str, str]:
    """The headers WAHA sends with a webhook signed with `key` (for tests and benchmarks)."""
    return {"X-Webhook-Hmac": sign(key, body), "X-Webhook-Hmac-Algorithm": ALGORITHM, "Content-Type": "application/json"}


def session_webhook(fleet_key: str, session: str, body: bytes) -> tuple[str, dict[str, str]]:
    """The path and headers of `body` posted as `session`'s webhook, as WAHA does with the config
    the orchestrator gives it (for tests and benchmarks)."""
    return f"{WEBHOOK_PATH}/{session}", signed_headers(session_webhook_key(fleet_key, session), body)


def verify(key: str, body: bytes, signature: str | None, algorithm: str | None = None) -> bool:
    """True when `signature` (the `X-Webhook-Hmac` header) signs `body`; compared in constant time.

    `algorithm` is the optional `X-Webhook-Hmac-Algorithm` header; anything but sha512 is refused.
    """
    return verify_keyed(keyed_hmac(key), body, signature, algorithm)


def verify_keyed(keyed: hmac.HMAC, body: bytes, signature: str | None, algorithm: str | None = None) -> bool:
    """`verify` with the key's `keyed_hmac` (left as it was: each check hashes a copy)."""
    if not signature:
        return False
    if algorithm is not None and algorithm.strip().lower() != ALGORITHM:
        return False
    mac = keyed.copy()
    mac.update(body)
    expected = mac.hexdigest().encode()
    # Headers arrive as latin-1 text; a non-hex value simply fails the comparison.
    given = signature.strip().lower().encode("latin-1", errors="replace")
    return hmac.compare_digest(expected, given)
