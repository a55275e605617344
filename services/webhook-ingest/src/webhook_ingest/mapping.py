"""Pure translation of WAHA webhooks into fleet events: which user, which event, which id.

No I/O here; `routes.py` decides what to do with the result.
"""

import re
from datetime import UTC, datetime

from pydantic import ValidationError

from fleet_shared.contracts import Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import (
    MessageAck,
    MessageReceived,
    MessageSent,
    SessionStatusReported,
)
from fleet_shared.ids import InvalidIdError, is_group_chat, session_name_for, validate_user_id

from .waha import WaAck, WahaWebhook, WaMessage, WaSessionStatus, parse_payload

# The orchestrator creates each session with `config.metadata = {METADATA_USER_KEY: <userId>}`.
METADATA_USER_KEY = "fleet.userId"

MESSAGE_EVENTS = frozenset({"message", "message.any"})
HANDLED_EVENTS = MESSAGE_EVENTS | {"message.ack", "session.status"}

# `{fromMe}_{chatId}_{rawId}[_{participant}]` (docs/waha.md#serialized-ids)
_SERIALIZED_ID_RE = re.compile(r"^(true|false)_([^_@]+(?:_[^_@]+)*@[a-z.]+)_(.+)$")


class ContractViolation(ValueError):
    """WAHA sent something waha-fleet's contracts refuse (an absurd length, a missing chat...)."""


def is_handled(event: str) -> bool:
    return event in HANDLED_EVENTS


def user_for(hook: WahaWebhook) -> str | None:
    """The user a webhook belongs to, or None when its session is not one of ours.

    The metadata alone is not trusted: the session name must also be the one derived from that
    user id, so a session misconfigured with another user's id cannot speak for them.
    """
    user_id = (hook.metadata or {}).get(METADATA_USER_KEY)
    if not isinstance(user_id, str):
        return None
    try:
        validate_user_id(user_id)
    except InvalidIdError:
        return None
    return user_id if hook.session == session_name_for(user_id) else None


def translate(hook: WahaWebhook, user_id: str) -> Envelope:
    """The fleet event for a handled WAHA webhook (see `is_handled`).

    Raises `waha.InvalidWebhook` when a required WAHA field is missing and `ContractViolation`
    when a field does not fit the fleet contract.
    """
    try:
        if hook.event in MESSAGE_EVENTS:
            return _message(hook, user_id, parse_payload(WaMessage, hook))
        if hook.event == "message.ack":
            return _ack(hook, user_id, parse_payload(WaAck, hook))
        if hook.event == "session.status":
            return _status(hook, user_id, parse_payload(WaSessionStatus, hook))
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ContractViolation(f"{hook.event}: {where}: {first.get('msg', 'invalid')}") from exc
    raise ValueError(f"not a handled event: {hook.event!r}")


def message_event_id(user_id: str, wa_message_id: str) -> str:
    """Same id for the same WhatsApp message, whether it came as `message`, `message.any` or a retry."""
    return deterministic_id(user_id, "message", wa_message_id)


def ack_event_id(user_id: str, wa_message_id: str, ack: int) -> str:
    return deterministic_id(user_id, "ack", wa_message_id, str(ack))


def status_event_id(user_id: str, waha_event_id: str) -> str:
    return deterministic_id(user_id, "waha-event", waha_event_id)


def _message(hook: WahaWebhook, user_id: str, msg: WaMessage) -> Envelope:
    # WAHA's `message` is documented as incoming only; should it ever carry fromMe=true it is the
    # same fact as `message.any` and gets the same type, so the two never disagree about one id.
    model = MessageSent if msg.from_me else MessageReceived
    chat_id = msg.to if msg.from_me else msg.from_
    if not chat_id:
        raise ContractViolation(f"{hook.event}: payload.{'to' if msg.from_me else 'from'} is required")
    payload = model(
        id=msg.id,
        chat_id=chat_id,
        from_me=msg.from_me,
        from_=msg.from_,
        to=msg.to,
        participant=msg.participant,
        body=msg.body,
        type=msg.type or ("media" if msg.has_media else "chat"),
        has_media=bool(msg.has_media),
        timestamp=msg.timestamp,
        ack=msg.ack,
        # A private chat is named after the person; a group's name is not in the message.
        chat_name=None if msg.from_me or is_group_chat(chat_id) else msg.sender_name,
    )
    return envelope(
        payload,
        user_id,
        id=message_event_id(user_id, msg.id),
        session=hook.session,
        correlation_id=hook.id,
        occurred_at=datetime.fromtimestamp(msg.timestamp, UTC),
    )


def _ack(hook: WahaWebhook, user_id: str, ack: WaAck) -> Envelope:
    parsed = _SERIALIZED_ID_RE.match(ack.id)
    # The serialized id names the chat; WAHA's `from` of an ack is the chat too (the peer).
    chat_id = parsed.group(2) if parsed else ack.from_
    if not chat_id:
        raise ContractViolation("message.ack: no chat in payload.id nor payload.from")
    from_me = ack.from_me if ack.from_me is not None else (parsed.group(1) == "true" if parsed else True)
    payload = MessageAck(id=ack.id, chat_id=chat_id, from_me=from_me, ack=ack.ack, ack_name=ack.ack_name)
    return envelope(
        payload,
        user_id,
        id=ack_event_id(user_id, ack.id, ack.ack),
        session=hook.session,
        correlation_id=hook.id,
        occurred_at=_from_ms(hook.timestamp),
    )


def phone_number(me_id: str | None) -> str | None:
    """`79111111111@c.us` -> `79111111111`; anything else (a `@lid`, nothing) is no phone number."""
    if not me_id or not me_id.endswith("@c.us"):
        return None
    return me_id.removesuffix("@c.us") or None


def _status(hook: WahaWebhook, user_id: str, status: WaSessionStatus) -> Envelope:
    payload = SessionStatusReported(
        status=status.status,
        phone_number=phone_number(hook.me.id if hook.me else None),
        push_name=hook.me.push_name if hook.me else None,
        reported_at_ms=hook.timestamp,
        waha_event_id=hook.id,
    )
    return envelope(
        payload,
        user_id,
        id=status_event_id(user_id, hook.id),
        session=hook.session,
        correlation_id=hook.id,
        occurred_at=_from_ms(hook.timestamp),
    )


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
