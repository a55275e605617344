"""Small helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .errors import EngineError, TextError, ValidationFailed, WahaError
from .messages import parse_serialized_id

if TYPE_CHECKING:
    from .app import Emulator
    from .state import Session, StateConflict


def emulator(request: Request) -> Emulator:
    return request.app.state.emulator


async def json_body(request: Request, default: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise TextError(400, f"Unexpected token in JSON at position {getattr(exc, 'pos', 0)}") from exc


def note_session(request: Request, name: str | None) -> None:
    """Tell the call log which session a request was about."""
    if name:
        request.state.waha_session = name


def created(body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=201)


def ok(body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=200)


def query_bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.lower() in ("true", "1", "yes")


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(["body must be an object"])
    return body


def field_errors(body: dict[str, Any], required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
                 kind: type = str, noun: str = "a string") -> list[str]:
    errors = [f"{f} must be {noun}" for f in required if not isinstance(body.get(f), kind)]
    errors += [f"{f} must be {noun}" for f in optional if body.get(f) is not None and not isinstance(body.get(f), kind)]
    return errors


def query_int(request: Request, name: str, default: int | None, errors: list[str]) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name} must be a number conforming to the specified constraints")
        return default
    if value < 0:
        errors.append(f"{name} must not be less than 0")
    return value


def query_flag(request: Request, name: str, default: bool, errors: list[str]) -> bool:
    """class-transformer's BooleanString: only 'true' and 'false' are booleans."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("true", "false"):
        return raw == "true"
    errors.append(f"{name} must be a boolean value")
    return default


def query_choice(request: Request, name: str, choices: tuple[str, ...], default: str | None,
                 errors: list[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        errors.append(f"{name} must be one of the following values: {', '.join(choices)}")
        return default
    return raw


def serialized_or_500(message_id: str) -> None:
    if parse_serialized_id(message_id) is None:
        # NOWEB's parseMessageIdSerialized throws on anything but {fromMe}_{chat}_{id}[_{participant}].
        raise EngineError(f"Invalid message id: '{message_id}'")


def control_session(request: Request, name: str) -> Session:
    """The session a control call is about (404 in the control API's own shape when unknown)."""
    s = emulator(request).sessions.get(name)
    if s is None:
        raise WahaError(404, {"error": "Session not found", "session": name})
    return s


def conflict(exc: StateConflict) -> JSONResponse:
    return JSONResponse(exc.body, status_code=409)
