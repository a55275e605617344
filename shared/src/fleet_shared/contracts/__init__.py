"""Versioned contracts of every command, query and event; see docs/contracts.md."""

from .admin import ADMIN_TYPES
from .base import (
    Contract,
    Envelope,
    ErrorBody,
    Reply,
    deterministic_id,
    envelope,
    envelope_type,
    envelope_union,
    new_id,
    utcnow,
)
from .commands import COMMAND_TYPES, QUERY_TYPES
from .events import EVENT_TYPES

ALL_TYPES = {**COMMAND_TYPES, **QUERY_TYPES, **EVENT_TYPES, **ADMIN_TYPES}
# Held here, as `envelope_type` holds the typed ones: pydantic keeps parametrized classes only weakly.
_ANY_ENVELOPE = Envelope[dict]


def parse_envelope(raw: dict) -> Envelope:
    """Validate an envelope and its `data` against the model its `type` names."""
    env = _ANY_ENVELOPE.model_validate(raw)
    model = ALL_TYPES.get(env.type)
    if model is None:
        raise ValueError(f"unknown message type {env.type!r}")
    if env.version != model.VERSION:
        raise ValueError(f"unsupported version {env.version} of {env.type}")
    return envelope_type(model).model_validate(raw)


__all__ = [
    "ALL_TYPES",
    "Contract",
    "Envelope",
    "ErrorBody",
    "Reply",
    "deterministic_id",
    "envelope",
    "envelope_type",
    "envelope_union",
    "new_id",
    "parse_envelope",
    "utcnow",
]
