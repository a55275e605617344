"""WAHA's (NestJS) error bodies and the handlers that produce them.

Three shapes exist (docs/waha.md#errors):
- text exception: {"message": "...", "error": "<reason phrase>", "statusCode": n}
- validation: 400 {"message": ["..."], "error": "Bad Request", "statusCode": 400}
- object exception, without statusCode: e.g. 422 {"error": "...", "session": ..., ...}
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("waha_emulator")


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def text_body(status: int, message: str | list[str]) -> dict[str, Any]:
    return {"message": message, "error": reason(status), "statusCode": status}


def unhandled_body(request_path: str, method: str, message: str, name: str = "Error",
                   body: Any = None, query: dict | None = None, version: dict | None = None) -> dict[str, Any]:
    return {
        "statusCode": 500,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "exception": {"message": message, "name": name, "stack": f"{name}: {message}"},
        "request": {"path": request_path, "method": method, "body": body or {}, "query": query or {}},
        "version": version or {},
    }


class WahaError(Exception):
    """Base of the errors a route may raise; `body` is sent as is."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers


class TextError(WahaError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, text_body(status, message))


class NotFound(TextError):
    def __init__(self, message: str = "Session not found") -> None:
        super().__init__(404, message)


class ValidationFailed(WahaError):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(400, text_body(400, list(messages)))


class ObjectError(WahaError):
    def __init__(self, status: int, obj: dict[str, Any]) -> None:
        super().__init__(status, obj)


class EngineError(Exception):
    """An error inside the engine, which WAHA answers as an unhandled 500 (e.g. a failed file.url fetch)."""

    def __init__(self, message: str, name: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        self.name = name


# NowebInMemoryStore: what every store read answers when config.noweb.store.enabled is not true.
STORE_DISABLED = (
    'Enable NOWEB store "config.noweb.store.enabled=True" and "config.noweb.store.full_sync=True" when '
    "starting a new session. Read more: https://waha.devlike.pro/docs/engines/noweb#store"
)


class StoreDisabled(TextError):
    def __init__(self) -> None:
        super().__init__(400, STORE_DISABLED)


def status_not_expected(session: str, status: str, expected: list[str]) -> ObjectError:
    return ObjectError(422, {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": session,
        "status": status,
        "expected": expected,
    })


def session_does_not_exist(session: str) -> ObjectError:
    return ObjectError(422, {"error": f'Session "{session}" does not exist', "session": session})


def install_error_handlers(app: FastAPI, version_info: dict[str, Any]) -> None:
    @app.exception_handler(WahaError)
    async def _waha_error(request: Request, exc: WahaError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(EngineError)
    async def _engine_error(request: Request, exc: EngineError) -> JSONResponse:
        body = unhandled_body(request.url.path, request.method, exc.message, exc.name,
                              query=dict(request.query_params), version=version_info)
        return JSONResponse(body, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            messages.append(f"{loc} {err.get('msg', 'is invalid')}".strip())
        return JSONResponse(text_body(400, messages), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # NestJS has no 405: an unrouted method is "Cannot <METHOD> <path>" 404.
        if exc.status_code in (404, 405):
            return JSONResponse(text_body(404, f"Cannot {request.method} {request.url.path}"), status_code=404)
        return JSONResponse(text_body(exc.status_code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = unhandled_body(request.url.path, request.method, str(exc), type(exc).__name__,
                              query=dict(request.query_params), version=version_info)
        return JSONResponse(body, status_code=500)
