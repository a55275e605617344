"""Test helpers: a real HTTP webhook receiver and a deadline-bound wait (used by this package's tests,
and usable by any test that points the emulator's webhooks somewhere)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def wait_until(predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0,
                     interval: float = 0.02, message: str = "condition") -> Any:
    """Poll until predicate() is truthy (returns that value) or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered
    at: float = field(default_factory=time.time)  # when it arrived (its body read)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:  # leave the test runner's signal handlers alone
        yield


class WebhookReceiver:
    """Records every request; answers from `script` (statuses, consumed in order), then `default_status`."""

    def __init__(self, script: Iterable[int] = (), default_status: int = 200, host: str = "127.0.0.1",
                 headers: dict[str, str] | None = None) -> None:
        self.script: deque[int] = deque(script)
        self.default_status = default_status
        self.response_headers = headers or {}
        self.host = host
        self.port = 0
        self.requests: list[Received] = []
        self.gates: dict[str, asyncio.Event] = {}  # path -> requests to it wait until it is set
        self.held: dict[str, int] = {}  # path -> requests waiting at its gate now
        self._server: _QuietServer | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/webhook"

    def url_for(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def hold(self, path: str) -> asyncio.Event:
        """Requests to `path` wait (unanswered) until the returned event is set."""
        gate = self.gates[path] = asyncio.Event()
        return gate

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        gate = self.gates.get(scope["path"])
        if gate is not None and not gate.is_set():
            self.held[scope["path"]] = self.held.get(scope["path"], 0) + 1
            try:
                await gate.wait()
            finally:
                self.held[scope["path"]] -= 1
        status = self.script.popleft() if self.script else self.default_status
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(Received(scope["method"], scope["path"], headers, body, status))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in self.response_headers.items()]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> WebhookReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="off", interface="asgi3")
        server = self._server = _QuietServer(config)
        task = self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        await wait_until(lambda: server.started or task.done(), 5, message="receiver start")
        if task.done():
            task.result()
        return self

    async def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
            self._server = self._task = None

    async def __aenter__(self) -> WebhookReceiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def events(self, event: str | None = None, session: str | None = None) -> list[dict[str, Any]]:
        """Envelopes of requests answered 2xx, optionally filtered."""
        out = []
        for r in self.requests:
            if not 200 <= r.status < 300:
                continue
            env = r.json
            if (event is None or env.get("event") == event) and (session is None or env.get("session") == session):
                out.append(env)
        return out

    def statuses(self, session: str | None = None) -> list[str]:
        return [e["payload"]["status"] for e in self.events("session.status", session)]

    async def wait_for_event(self, event: str, predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
                             timeout: float = 5.0, session: str | None = None) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((e for e in self.events(event, session) if predicate(e)), None)

        return await wait_until(find, timeout, message=f"webhook {event!r}")
