"""Small helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .errors import TextError

if TYPE_CHECKING:
    from .app import Emulator


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
