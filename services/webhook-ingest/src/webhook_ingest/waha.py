"""WAHA's webhook shapes, as WAHA sends them (docs/waha.md#webhooks: envelope, events, WAMessage).

Only the fields waha-fleet reads; the rest is ignored. These are WAHA's models, not ours:
`mapping.py` turns them into fleet contracts.
"""

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from fleet_shared.errors import describe
from fleet_shared.wamessage import MAX_MS, MAX_SECONDS, WaMedia, WaMessage, WaReplyTo
from fleet_shared.wamessage import SHORT as _SHORT

__all__ = ["MAX_MS", "MAX_SECONDS", "WaMedia", "WaMessage", "WaReplyTo"]


class InvalidJson(ValueError):
    pass


class InvalidWebhook(ValueError):
    pass


class _Waha(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Me(_Waha):
    id: str | None = Field(default=None, max_length=_SHORT)
    push_name: str | None = Field(default=None, alias="pushName", max_length=1024)


class WahaWebhook(_Waha):
    """The envelope of every webhook POST."""

    id: str = Field(min_length=1, max_length=_SHORT)  # evt_<ulid>; the same on every retry
    timestamp: int = Field(ge=0, le=MAX_MS)  # ms
    event: str = Field(min_length=1, max_length=64)
    session: str = Field(min_length=1, max_length=_SHORT)
    metadata: dict[str, Any] | None = None
    me: Me | None = None
    payload: Any = None
    engine: str | None = Field(default=None, max_length=64)


class WaAck(_Waha):
    """Payload of `message.ack`."""

    id: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    participant: str | None = None
    from_me: StrictBool | None = Field(default=None, alias="fromMe")
    ack: int
    ack_name: str | None = Field(default=None, alias="ackName", max_length=64)


class WaReactionBody(_Waha):
    text: str = Field(max_length=64)  # "" takes the reaction back
    message_id: str = Field(alias="messageId", min_length=1, max_length=512)


class WaReaction(_Waha):
    """Payload of `message.reaction`."""

    id: str = Field(min_length=1)
    timestamp: int = Field(ge=0, le=MAX_SECONDS)
    from_: str | None = Field(default=None, alias="from")
    from_me: StrictBool = Field(alias="fromMe")
    participant: str | None = None
    reaction: WaReactionBody


class WaRevoked(_Waha):
    """Payload of `message.revoked`: `after` is the deletion itself, `revokedMessageId` the raw id deleted."""

    after: WaMessage
    revoked_message_id: str = Field(alias="revokedMessageId", min_length=1, max_length=512)


class WaGroupMember(_Waha):
    id: str = Field(min_length=1, max_length=_SHORT)
    pn: str | None = Field(default=None, max_length=_SHORT)
    role: str | None = Field(default=None, max_length=32)


class WaGroupInfo(_Waha):
    id: str = Field(min_length=1, max_length=_SHORT)
    subject: str | None = None
    participants: list[WaGroupMember] | None = None


class WaGroupEvent(_Waha):
    """Payload of `group.v2.join`, `.update`, `.leave` and `.participants` (WAHA's GroupV2*Event)."""

    timestamp: int | None = Field(default=None, ge=0, le=MAX_MS)  # ms
    group: WaGroupInfo
    type: str | None = Field(default=None, max_length=32)  # participants: join, leave, promote, demote
    participants: list[WaGroupMember] | None = None


class WaSessionStatus(_Waha):
    """Payload of `session.status`."""

    name: str | None = None
    status: str = Field(min_length=1, max_length=64)


M = TypeVar("M", bound=BaseModel)


def parse_webhook(raw: bytes) -> WahaWebhook:
    """The envelope of a raw body; `InvalidJson` or `InvalidWebhook` when it is not one.

    Parsed and validated in one pass by pydantic-core: half the CPU of `json.loads` then validating.
    """
    try:
        return WahaWebhook.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if not errors or errors[0]["type"] != "json_invalid":
            raise _invalid_webhook(exc) from exc
    return _parse_with_python_json(raw)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_with_python_json(raw: bytes) -> WahaWebhook:
    """A body pydantic-core's parser refuses, read by Python's: JSON may escape a lone UTF-16
    surrogate (`\\ud83d`), and Node's `JSON.stringify` writes one for half an emoji cut off in a
    message, so WAHA can send it. It becomes U+FFFD (UTF-8 cannot carry it) and the message is kept."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidJson("body is nested too deeply to be a WAHA webhook") from exc
    text = json.dumps(data, ensure_ascii=False)
    if _LONE_SURROGATE.search(text):
        data = json.loads(_LONE_SURROGATE.sub("\ufffd", text))
    try:
        return WahaWebhook.model_validate(data)
    except ValidationError as exc:
        raise _invalid_webhook(exc) from exc


def _invalid_webhook(exc: ValidationError) -> InvalidWebhook:
    errors = exc.errors()
    if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
        return InvalidWebhook("body must be a JSON object")
    return InvalidWebhook(describe(exc))


def parse_payload(model: type[M], hook: WahaWebhook) -> M:
    if not isinstance(hook.payload, dict):
        raise InvalidWebhook(f"payload of {hook.event} must be an object")
    try:
        return model.model_validate(hook.payload)
    except ValidationError as exc:
        raise InvalidWebhook(describe(exc, "payload")) from exc
