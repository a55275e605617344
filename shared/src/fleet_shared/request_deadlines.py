"""Deadlines for a client to send its request, which uvicorn does not have.

uvicorn's keep-alive timeout only covers the wait *between* requests and restarts with every byte,
and nothing at all covers a connection that never sends one: a client trickling its headers or its
body a byte at a time holds a connection (and, with many, the process's file descriptors) for as
long as it likes. `deadline_protocol` is uvicorn's HTTP protocol (httptools' or h11's) with two
deadlines:

- the request's head must be complete within `header_timeout` of the connection opening (or, on a
  kept-alive connection, of the next request's first byte);
- its body within `body_timeout` of the head.

Past either, the connection is closed (the app, if it was reading the body, sees a disconnect).
Responses are not limited: a slow answer or a WebSocket (disarmed on the upgrade) runs as long as
it needs. Built on the protocols' connection and parser callbacks (and h11's `conn` state);
`shared/tests/test_request_deadlines.py` holds both to that.
"""

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: uvicorn uses h11
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)


class _Deadlines:
    """The timer: one deadline at a time, for the part of the request being received."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    _timer: asyncio.TimerHandle | None = None
    _phase: str | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: Any

    def _arm(self, phase: str) -> None:
        if self._phase == phase:
            return
        self._disarm()
        timeout = self.header_timeout if phase == "head" else self.body_timeout
        self._phase = phase
        self._timer = self.loop.call_later(timeout, self._expired, phase, timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _expired(self, phase: str, timeout: float) -> None:
        self._timer, self._phase = None, None
        if not self.transport.is_closing():
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.info("closed the connection of %s: its request %s took longer than %.0f s", client, phase, timeout)
            self.transport.close()


class _DeadlineH11Protocol(_Deadlines, H11Protocol):
    _upgraded = False  # the transport belongs to a WebSocket protocol now

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True
        self._disarm()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline of what the client is sending now, if anything (from h11's state)."""
        if self._upgraded or self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm("body")
        elif state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm("head")  # a request has begun, its head not complete yet
        elif state is not h11.IDLE:
            self._disarm()  # the request is in: the answer takes the time it takes
        # IDLE without data: between requests, uvicorn's keep-alive timeout applies.


def _httptools_protocol() -> type | None:
    if HttpToolsProtocol is None:
        return None

    class _DeadlineHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
        """The same deadlines, from httptools' parser callbacks. The callbacks only note what the
        client is sending now; the deadline follows once the data received is parsed, so a request
        that arrives whole in one read (most of them) arms and cancels no timer at all."""

        # What the client is sending: "head" (from the connection's start), "body", or None (the
        # request is in, or between requests).
        _sending: str | None = "head"

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm("head")

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._sending is None or self.transport.is_closing():
                self._disarm()
            else:
                self._arm(self._sending)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._sending = "head"

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._sending = "body"

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._sending = None

        def handle_websocket_upgrade(self) -> None:
            self._sending = None
            self._disarm()
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return _DeadlineHttpToolsProtocol


_DeadlineHttpTools = _httptools_protocol()


def deadline_protocol(header_timeout: float, body_timeout: float, *, parser: str = "auto") -> type:
    """uvicorn's HTTP protocol class with these deadlines (pass it as `uvicorn.Config(http=...)`):
    httptools' when installed (uvicorn's own choice, `parser="auto"`), else h11's."""
    base = _DeadlineHttpTools if parser in ("auto", "httptools") and _DeadlineHttpTools is not None else _DeadlineH11Protocol
    if parser == "httptools" and _DeadlineHttpTools is None:
        raise RuntimeError("httptools is not installed")
    return type(f"Deadline{base.__name__.removeprefix('_Deadline')}", (base,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})
