"""ASGI middleware for /api/*: X-Api-Key check, injected faults and the API call log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from .app import Emulator

# First path segments under /api/ that are not a session name (for `/api/{session}/...` routes).
_TOP_LEVEL = {
    "sessions", "server", "files", "keys", "contacts", "screenshot", "messages", "version", "checkNumberStatus",
    "reaction", "star", "forwardMessage", "startTyping", "stopTyping", "send", "apps", "ws",
}


class CallLog:
    def __init__(self, keep: int = 10_000) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=keep)

    def add(self, **entry: Any) -> dict[str, Any]:
        """Log a call as it starts; the caller fills in its `status` when it is answered (None: in flight)."""
        self.entries.append(entry)
        return entry

    def query(self, method: str | None = None, path: str | None = None,
              session: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.entries
            if (method is None or e["method"] == method.upper())
            and (path is None or e["path"] == path)
            and (session is None or e["session"] == session)
        ]


def key_matches(configured: str, given: str | None) -> bool:
    if given is None:
        return False
    if configured.startswith("sha512:"):
        digest = hashlib.sha512(given.encode()).hexdigest()
        return hmac.compare_digest(digest, configured.removeprefix("sha512:").lower())
    return hmac.compare_digest(configured.encode(), given.encode())


def _session_from(path: str, query: dict[str, list[str]], body: bytes) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "sessions" and parts[2]:
        return parts[2]
    if len(parts) >= 3 and parts[1] not in _TOP_LEVEL and not parts[1].startswith("send"):
        return parts[1]
    if query.get("session"):
        return query["session"][0]
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if isinstance(data, dict):
            value = data.get("session") if "session" in data else (
                data.get("name") if path.rstrip("/") == "/api/sessions" else None)
            return value if isinstance(value, str) else None
    return None


async def _send_json(send: Callable[..., Awaitable[None]], status: int, body: Any,
                     headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body, separators=(",", ":")).encode()
    hdrs = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


class ApiMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]],
                       send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.emulator.ensure_started()
        path: str = scope["path"]
        if not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return

        body, receive = await _buffer_body(receive)
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        state = scope.setdefault("state", {})
        entry = self.emulator.calls.add(
            method=scope["method"], path=path, query=scope.get("query_string", b"").decode(),
            session=_session_from(path, query, body), status=None, fault=False,
            timestamp=int(time.time() * 1000),
        )
        try:
            if not self._authorized(scope, path, query):
                entry["status"] = 401
                await _send_json(send, 401, {"message": "Unauthorized", "statusCode": 401})
                return
            faults = self.emulator.faults
            if latency := faults.latency(entry["session"], path):
                await asyncio.sleep(latency)
            if faults.should_fail(entry["session"], path):
                status, fault_body, headers = faults.failure(path, scope["method"], self.emulator.environment)
                entry["status"], entry["fault"] = status, True
                await _send_json(send, status, fault_body, headers)
                return

            async def send_wrapper(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                entry["status"] = entry["status"] or 500
                raise
        finally:
            if state.get("waha_session"):
                entry["session"] = state["waha_session"]
            if entry["status"] is None:  # the client went away before an answer started
                entry["status"] = 499

    def _authorized(self, scope: dict[str, Any], path: str, query: dict[str, list[str]]) -> bool:
        config = self.emulator.config
        if not config.auth_enabled:
            return True
        given = None
        for name, value in scope.get("headers", []):
            if name == b"x-api-key":
                given = value.decode("latin-1")
                break
        # Browsers cannot set headers on <img src>: WAHA accepts the key as a query parameter for files.
        if given is None and path.startswith("/api/files/") and query.get("x-api-key"):
            given = query["x-api-key"][0]
        return key_matches(config.api_key or "", given)


async def _buffer_body(receive: Callable[..., Awaitable[Any]]) -> tuple[bytes, Callable[..., Awaitable[Any]]]:
    """Read the whole request body (to log its session) and hand an equivalent receive() on."""
    chunks: list[bytes] = []
    pending: dict[str, Any] | None = None
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed, pending
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return body, replay
