"""Reading a delivery: the one place that turns a body and its routing key into a typed envelope (ADR 0018).

Every consumer (the orchestrator's subscribers, the persister's, `fleet_shared.subscribe`) reads
its deliveries here, so the rules are the same everywhere:

- the body is a JSON object and a valid envelope of a known type and version (`parse_envelope`);
- `types`, when given, are the only types the consumer takes (checked before the full validation,
  so a foreign message is named for what it is);
- a user routing key (`user.<id>.<aggregate>.<action>`) must name the envelope's user and type, an
  admin key (`system.admin.<type>`) its type. Any other key is a replay through the default
  exchange (its key is the queue's name, `fleet_devtools.dlq`) and is taken only where
  `replays=True`; the envelope then speaks for itself.

Each failure is a `BadDelivery` subclass, so a consumer can answer each in its own words; none of
them can be cured by delivering the message again.
"""

import json
from collections.abc import Callable, Collection
from typing import TypeVar

from .contracts import Envelope, parse_envelope
from .contracts.stream import StoredEvent, parse_stored_event
from .errors import describe
from .routing import ADMIN_KEY_PREFIX, parse_admin_key, parse_user_key

E = TypeVar("E", bound=Envelope)


class BadDelivery(ValueError):
    """A delivery that is not a message this consumer can ever handle. `message_type`: the type
    its body names, when it names one."""

    def __init__(self, message: str, message_type: object = None) -> None:
        super().__init__(message)
        self.message_type = message_type


class NotJson(BadDelivery):
    pass


class UnexpectedType(BadDelivery):
    def __init__(self, message_type: object) -> None:
        super().__init__(f"unexpected message type {message_type!r}", message_type)


class InvalidEnvelope(BadDelivery):
    pass


class KeyMismatch(BadDelivery):
    """The routing key is not one the envelope may travel with."""


# Set by the operators' replay (`fleet_devtools.dlq`) on what it moves back from a dead-letter queue.
REPLAYS_HEADER = "x-fleet-replays"


def is_replay(headers: object) -> bool:
    """Whether a delivery is an operator's replay from a dead-letter queue (its routing key is then
    the queue's name, not the user key it was first published with)."""
    return isinstance(headers, dict) and REPLAYS_HEADER in headers


def routing_user(routing_key: str | None) -> str | None:
    """The user a user routing key names (None for any other key): known before the body is read."""
    try:
        return parse_user_key(routing_key or "").user_id
    except ValueError:
        return None


def read_delivery(
    body: bytes, routing_key: str | None, *, types: Collection[str] | None = None, replays: bool = False
) -> Envelope:
    """The typed envelope of a delivery, checked against its routing key (see the module)."""
    return _read(body, routing_key, types, replays, parse_envelope)


def read_stored_delivery(
    body: bytes, routing_key: str | None, *, types: Collection[str] | None = None, replays: bool = False
) -> StoredEvent:
    """`read_delivery` for a delivery of `<p>.stream`: a stored event (the envelope and its `seq`)."""
    return _read(body, routing_key, types, replays, parse_stored_event)


def _read(
    body: bytes, routing_key: str | None, types: Collection[str] | None, replays: bool, parse: Callable[[dict], E]
) -> E:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotJson(f"body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise NotJson("body is not a JSON object")
    if types is not None and raw.get("type") not in types:
        raise UnexpectedType(raw.get("type"))
    try:
        env = parse(raw)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidEnvelope(f"invalid {raw.get('type')} envelope: {describe(exc)}", raw.get("type")) from exc
    check_routing_key(env, routing_key or "", replays=replays)
    return env


def check_routing_key(env: Envelope, routing_key: str, *, replays: bool = False) -> None:
    if routing_key.startswith("user."):
        try:
            key = parse_user_key(routing_key)
        except ValueError as exc:
            raise KeyMismatch(str(exc), env.type) from exc
        if key.user_id != env.user_id:
            raise KeyMismatch(f"envelope user {env.user_id!r} is not the routing key's user {key.user_id!r}", env.type)
        if key.type != env.type:
            raise KeyMismatch(f"envelope type {env.type!r} does not match routing key {routing_key!r}", env.type)
    elif routing_key.startswith(ADMIN_KEY_PREFIX):
        try:
            admin_type = parse_admin_key(routing_key)
        except ValueError as exc:
            raise KeyMismatch(str(exc), env.type) from exc
        if admin_type != env.type:
            raise KeyMismatch(f"envelope type {env.type!r} does not match routing key {routing_key!r}", env.type)
    elif not replays:
        raise KeyMismatch(f"not a user routing key: {routing_key!r}", env.type)
