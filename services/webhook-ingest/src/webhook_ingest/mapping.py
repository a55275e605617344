"""Pure translation of WAHA webhooks into fleet events: which user, which event, which id.

No I/O here; `routes.py` decides what to do with the result.
"""

from datetime import UTC, datetime

from pydantic import ValidationError

from fleet_shared.contracts import Contract, Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import (
    ChatUpdated,
    GroupParticipant,
    MediaAvailable,
    MemberChange,
    MessageAck,
    MessageEdited,
    MessageReaction,
    MessageReceived,
    MessageRevoked,
    MessageSent,
    SessionStatusReported,
)
from fleet_shared.errors import describe
from fleet_shared.ids import CHAT_ID_RE, MESSAGE_ID_RE
from fleet_shared.waha import is_group_chat, parse_serialized_id, phone_number, serialized_id, session_owner
from fleet_shared.wamessage import message_fields

from .waha import (
    WaAck,
    WaGroupEvent,
    WahaWebhook,
    WaMessage,
    WaReaction,
    WaRevoked,
    WaSessionStatus,
    parse_payload,
)

MESSAGE_EVENTS = frozenset({"message", "message.any"})
MESSAGE_FACTS = (MessageReceived, MessageSent, MessageAck, MessageReaction, MessageEdited, MessageRevoked)
GROUP_EVENTS = frozenset({"group.v2.join", "group.v2.update", "group.v2.leave", "group.v2.participants"})
HANDLED_EVENTS = (
    MESSAGE_EVENTS | GROUP_EVENTS | {"message.ack", "message.reaction", "message.edited", "message.revoked", "session.status"}
)
ROLES = {"admin": "admin", "superadmin": "superadmin"}
MEMBER_CHANGES = ("join", "leave", "promote", "demote")


class ContractViolation(ValueError):
    """WAHA sent something waha-fleet's contracts refuse (an absurd length, a missing chat...)."""


def is_handled(event: str) -> bool:
    return event in HANDLED_EVENTS


def user_for(hook: WahaWebhook) -> str | None:
    """The user a webhook belongs to, or None when its session is not one of ours
    (`fleet_shared.waha.session_owner`: the metadata's user, only on that user's session name)."""
    return session_owner(hook.session, hook.metadata)


def translate(hook: WahaWebhook, user_id: str) -> Envelope:
    """The fleet event for a handled WAHA webhook (see `is_handled`).

    Raises `waha.InvalidWebhook` when a required WAHA field is missing and `ContractViolation`
    when a field does not fit the fleet contract.
    """
    try:
        env = _translated(hook, user_id)
    except ValidationError as exc:
        raise ContractViolation(f"{hook.event}: {describe(exc)}") from exc
    if isinstance(env.data, MESSAGE_FACTS):
        _check_ids(hook.event, env.data.id, env.data.chat_id)
    return env


def _translated(hook: WahaWebhook, user_id: str) -> Envelope:
    if hook.event in MESSAGE_EVENTS:
        return _message(hook, user_id, parse_payload(WaMessage, hook))
    if hook.event == "message.ack":
        return _ack(hook, user_id, parse_payload(WaAck, hook))
    if hook.event == "message.reaction":
        return _reaction(hook, user_id, parse_payload(WaReaction, hook))
    if hook.event == "message.edited":
        return _edited(hook, user_id, parse_payload(WaMessage, hook))
    if hook.event == "message.revoked":
        return _revoked(hook, user_id, parse_payload(WaRevoked, hook))
    if hook.event == "session.status":
        return _status(hook, user_id, parse_payload(WaSessionStatus, hook))
    if hook.event in GROUP_EVENTS:
        return _group(hook, user_id, parse_payload(WaGroupEvent, hook))
    raise ValueError(f"not a handled event: {hook.event!r}")


def _check_ids(event: str, message_id: str, chat_id: str) -> None:
    """A message is stored under its id and chat, and the API names it by them again: ids that the
    API would refuse (`fleet_shared.ids`) are refused here, not stored half-usable."""
    if not CHAT_ID_RE.fullmatch(chat_id):
        raise ContractViolation(f"{event}: {chat_id[:80]!r} is not a WhatsApp chat id")
    if not MESSAGE_ID_RE.fullmatch(message_id):
        raise ContractViolation(f"{event}: {message_id[:80]!r} is not a serialized WhatsApp message id")


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
    chat_id = _chat_of(hook, msg)
    payload = model(
        **message_fields(msg, chat_id),
        # A private chat is named after the person; a group's name is not in the message.
        chat_name=None if msg.from_me or is_group_chat(chat_id) else msg.sender_name,
        received_at_ms=hook.timestamp,
    )
    return _envelope(hook, user_id, payload, message_event_id(user_id, msg.id), _from_s(msg.timestamp))


def media_to_copy(hook: WahaWebhook, event: Envelope) -> Envelope | None:
    """The `media.available` that asks the orchestrator to copy `event`'s media out of WAHA, if it
    has a file WAHA holds for us. Not for what was sent through WAHA's API: the orchestrator sent
    those bytes and keeps them already."""
    m = event.data
    if not isinstance(m, (MessageReceived, MessageSent)) or m.media is None or m.media.status != "pending":
        return None
    wa = parse_payload(WaMessage, hook)
    if wa.source == "api" or wa.media is None or not wa.media.url:
        return None
    available = MediaAvailable(
        message_id=m.id, chat_id=m.chat_id, kind=m.media.kind, url=wa.media.url, mimetype=m.media.mimetype,
        filename=m.media.filename,
    )
    return _envelope(hook, event.user_id, available, deterministic_id(event.user_id, "media", m.id), event.occurred_at)


def _chat_of(hook: WahaWebhook, msg: WaMessage) -> str:
    chat_id = msg.chat_id
    if not chat_id:
        raise ContractViolation(f"{hook.event}: payload.{'to' if msg.from_me else 'from'} is required")
    return chat_id


def _target(hook: WahaWebhook, action: WaMessage, raw_id: str) -> str:
    """The serialized id of the message an edit or a deletion (`action`, by the same sender in the
    same chat) changes, which WAHA names by its raw id."""
    if parse_serialized_id(raw_id) is not None:
        return raw_id  # a serialized id already
    parsed = parse_serialized_id(action.id)
    if parsed is not None:
        return parsed.with_raw_id(raw_id)
    return serialized_id(action.from_me, _chat_of(hook, action), raw_id, action.participant)


def _reaction(hook: WahaWebhook, user_id: str, r: WaReaction) -> Envelope:
    target = parse_serialized_id(r.reaction.message_id)
    chat_id = target.chat_id if target else r.from_
    if not chat_id:
        raise ContractViolation("message.reaction: no chat in payload.reaction.messageId nor payload.from")
    sender = (hook.me.id if hook.me else None) if r.from_me else (r.participant or r.from_)
    payload = MessageReaction(
        id=r.reaction.message_id, chat_id=chat_id, from_=sender, from_me=r.from_me, reaction=r.reaction.text,
        timestamp=r.timestamp,
    )
    return _envelope(hook, user_id, payload, deterministic_id(user_id, "reaction", r.id), _from_s(r.timestamp))


def _edited(hook: WahaWebhook, user_id: str, msg: WaMessage) -> Envelope:
    if not msg.edited_message_id:
        raise ContractViolation("message.edited: payload.editedMessageId is required")
    payload = MessageEdited(
        id=_target(hook, msg, msg.edited_message_id), chat_id=_chat_of(hook, msg), body=msg.body, edited_at=msg.timestamp
    )
    return _envelope(hook, user_id, payload, deterministic_id(user_id, "edited", msg.id), _from_s(msg.timestamp))


def _revoked(hook: WahaWebhook, user_id: str, r: WaRevoked) -> Envelope:
    target = _target(hook, r.after, r.revoked_message_id)
    payload = MessageRevoked(id=target, chat_id=_chat_of(hook, r.after), revoked_at=r.after.timestamp)
    return _envelope(hook, user_id, payload, deterministic_id(user_id, "revoked", target), _from_s(r.after.timestamp))


def _envelope(hook: WahaWebhook, user_id: str, payload: Contract, id: str, occurred_at: datetime) -> Envelope:
    return envelope(payload, user_id, id=id, session=hook.session, correlation_id=hook.id, occurred_at=occurred_at)


def _ack(hook: WahaWebhook, user_id: str, ack: WaAck) -> Envelope:
    parsed = parse_serialized_id(ack.id)
    # The serialized id names the chat; WAHA's `from` of an ack is the chat too (the peer).
    chat_id = parsed.chat_id if parsed else ack.from_
    if not chat_id:
        raise ContractViolation("message.ack: no chat in payload.id nor payload.from")
    from_me = ack.from_me if ack.from_me is not None else (parsed.from_me if parsed else True)
    payload = MessageAck(id=ack.id, chat_id=chat_id, from_me=from_me, ack=ack.ack, ack_name=ack.ack_name)
    return envelope(
        payload,
        user_id,
        id=ack_event_id(user_id, ack.id, ack.ack),
        session=hook.session,
        correlation_id=hook.id,
        occurred_at=_from_ms(hook.timestamp),
    )


def _group(hook: WahaWebhook, user_id: str, g: WaGroupEvent) -> Envelope:
    """A group's subject, members or the user leaving it, as `chat.updated`."""
    members = None
    if hook.event == "group.v2.join" and g.group.participants is not None:
        members = [
            GroupParticipant(id=m.id, phone=m.pn, role=ROLES.get(m.role or "", "participant")) for m in g.group.participants
        ]
    changes = None
    if hook.event == "group.v2.participants":
        if g.type not in MEMBER_CHANGES:
            raise ContractViolation(f"group.v2.participants: unknown type {g.type!r}")
        changes = [MemberChange(id=m.id, phone=m.pn, change=g.type) for m in g.participants or []]
    payload = ChatUpdated(
        chat_id=g.group.id,
        name=g.group.subject if hook.event in ("group.v2.join", "group.v2.update") else None,
        participants=members,
        member_changes=changes,
        left=hook.event == "group.v2.leave",
        updated_at_ms=g.timestamp or hook.timestamp,
    )
    if not CHAT_ID_RE.fullmatch(payload.chat_id):
        raise ContractViolation(f"{hook.event}: {payload.chat_id[:80]!r} is not a WhatsApp chat id")
    return _envelope(hook, user_id, payload, deterministic_id(user_id, "group", hook.id), _from_ms(hook.timestamp))


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


def _from_s(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
