"""Slow clients (issue 22.5): a request's head and body must arrive within their deadlines, over real
sockets, with both of uvicorn's HTTP parsers; answers and WebSockets are not limited."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket
from websockets.asyncio.client import connect

from fleet_devtools.localdev import free_port, wait_until
from fleet_shared.http import server_config
from fleet_shared.request_deadlines import deadline_protocol
from fleet_shared.settings import FleetSettings

HEAD, BODY = 0.5, 1.0
PARSERS = ["h11", "httptools"]


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.bodies = []

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        body = await request.body()
        app.state.bodies.append(body)
        return {"bytes": len(body)}

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(HEAD + BODY)
        return {"ok": True}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    return app


@asynccontextmanager
async def served(app: FastAPI, config: uvicorn.Config) -> AsyncIterator[int]:
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: _now(server.started), timeout=10, what="the server started")
    try:
        yield config.port
    finally:
        server.should_exit = True
        await task


async def _now(value: bool) -> bool:
    return value


@pytest.fixture(params=PARSERS)
async def port(request) -> AsyncIterator[int]:
    app = make_app()
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off",
                            http=deadline_protocol(HEAD, BODY, parser=request.param))
    async with served(app, config) as p:
        yield p


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closed the connection (EOF); fails after `within`."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while await reader.read(1024):
            pass
    return time.monotonic() - started


async def test_a_connection_that_never_sends_a_request_is_closed(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await closed_by_server(reader, within=HEAD + 3) >= HEAD * 0.8
    writer.close()


async def test_headers_trickled_a_byte_at_a_time_are_cut_off(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n\r\nhi"

    async def trickle() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)  # the whole head would take ~5 s

    sending = asyncio.create_task(trickle())
    try:
        assert await closed_by_server(reader, within=HEAD + 3) < 3
    finally:
        sending.cancel()
        writer.close()


async def test_a_body_trickled_past_its_deadline_is_cut_off_and_the_app_sees_no_body(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")

    async def trickle() -> None:
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.02)

    sending = asyncio.create_task(trickle())
    try:
        assert await closed_by_server(reader, within=BODY + 3) < BODY + 3
    finally:
        sending.cancel()
        writer.close()


async def test_requests_in_time_answers_slower_than_the_deadlines_and_keep_alive_work(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(2):
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            assert await reader.readexactly(length) == b'{"bytes":5}'
            await asyncio.sleep(HEAD + 0.2)  # idle between requests longer than the head deadline: keep-alive's business
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD + BODY + 5)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        writer.close()


async def test_a_websocket_lives_past_the_deadlines(port):
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await asyncio.sleep(HEAD + BODY + 0.5)
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 5) == "still here"


async def test_every_service_is_served_with_the_deadlines_of_its_settings():
    settings = FleetSettings(environment="dev", http_header_timeout="3s", http_body_timeout="7s", _env_file=None)
    config = server_config(make_app(), settings)
    assert (config.http.header_timeout, config.http.body_timeout) == (3.0, 7.0)
