"""A minimal HTTP/1.1 keep-alive client for load generators, and the two load shapes.

Requests are prepared bytes, so the load generator spends next to nothing per request (httpx
would cost more CPU than the services it measures on a 2-core machine). Enough of HTTP/1.1 for
our own uvicorn servers: Content-Length or chunked bodies, keep-alive, `Connection: close`.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .stats import summarize


def build_request(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_request(method: str, path: str, port: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
    body = json.dumps(payload).encode()
    return build_request(method, path, port, {"Content-Type": "application/json", **(headers or {})}, body)


class Connection:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one prepared request; answer (status, body). Reconnects once if the socket was closed."""
        for attempt in (1, 2):
            if self.writer is None:
                await self._open()
            try:
                return await self._exchange(raw)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if (i := lower.find(b"\r\ncontent-length:")) >= 0:
            end = lower.find(b"\r\n", i + 2)
            body = await self.reader.readexactly(int(lower[i + 17 : end]))
        elif b"transfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


@dataclass
class Recorder:
    """Latencies (seconds) and statuses of requests completed inside the measuring window."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    all_ok: int = 0  # 2xx answers at any time, the warm-up's and the tail's too (CPU per operation counts them)

    def add(self, latency: float, status: int) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    def result(self, seconds: float) -> dict:
        return {
            "seconds": seconds,
            "requests": len(self.latencies),
            "ok": self.ok(),
            "errors": self.errors,
            "all_ok": self.all_ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "per_second": self.ok() / seconds if seconds > 0 else 0.0,
            **summarize(self.latencies),
        }


Call = Callable[[], Awaitable[int]]


async def closed_loop_calls(
    calls: Callable[[int], Call], *, concurrency: int, duration: float, warmup: float
) -> dict:
    """`concurrency` clients, back to back for warmup + duration; client `i` makes `calls(i)()`, which
    answers an HTTP status (an OSError or an incomplete read counts as an error)."""
    recorder = Recorder()
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + duration

    async def client(i: int) -> None:
        call = calls(i)
        while (now := time.perf_counter()) < window_end:
            try:
                status = await call()
            except (OSError, asyncio.IncompleteReadError):
                recorder.errors += 1
                await asyncio.sleep(0.01)
                continue
            done = time.perf_counter()
            recorder.all_ok += 200 <= status < 300
            if window_start <= done <= window_end:
                recorder.add(done - now, status)

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return recorder.result(duration)


async def closed_loop(
    port: int, requests: Callable[[], Iterator[bytes]] | Iterator[bytes], *, concurrency: int, duration: float, warmup: float
) -> dict:
    """`concurrency` clients, each with its own connection, sending back to back for warmup + duration."""
    source = requests() if callable(requests) else requests
    connections = [Connection(port) for _ in range(concurrency)]

    def calls(i: int) -> Call:
        async def call() -> int:
            status, _ = await connections[i].request(next(source))
            return status

        return call

    try:
        return await closed_loop_calls(calls, concurrency=concurrency, duration=duration, warmup=warmup)
    finally:
        for conn in connections:
            conn.close()


async def open_loop_calls(call: Call, *, rate: float, duration: float, warmup: float, max_in_flight: int = 256) -> dict:
    """`call()` made at a fixed `rate` whatever the answers do; latency counted from the planned send time
    (so a slow answer is not hidden by sending the next one later)."""
    recorder = Recorder()
    in_flight = 0
    late = 0
    tasks: set[asyncio.Task] = set()
    total = int((warmup + duration) * rate)
    warm = int(warmup * rate)
    start = time.perf_counter() + 0.05

    async def one(planned: float, measured: bool) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            status = await call()
        except (OSError, asyncio.IncompleteReadError):
            recorder.errors += 1
            return
        finally:
            in_flight -= 1
        recorder.all_ok += 200 <= status < 300
        if measured:
            recorder.add(time.perf_counter() - planned, status)

    for i in range(total):
        planned = start + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        if in_flight >= max_in_flight:
            recorder.errors += 1  # over the cap: counted as a failure, never queued
            continue
        task = asyncio.create_task(one(planned, i >= warm))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    result = recorder.result(duration)
    result["late_sends"] = late
    result["rate"] = rate
    return result


async def open_loop(port: int, requests: Iterator[bytes], *, rate: float, duration: float, warmup: float, max_connections: int = 256) -> dict:
    """`open_loop_calls` over keep-alive connections, a new one whenever all are busy."""
    idle: list[Connection] = []

    async def call() -> int:
        conn = idle.pop() if idle else Connection(port)
        try:
            status, _ = await conn.request(next(requests))
        except (OSError, asyncio.IncompleteReadError):
            conn.close()
            raise
        idle.append(conn)
        return status

    try:
        return await open_loop_calls(call, rate=rate, duration=duration, warmup=warmup, max_in_flight=max_connections)
    finally:
        for conn in idle:
            conn.close()
