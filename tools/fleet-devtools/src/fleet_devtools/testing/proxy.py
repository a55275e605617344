"""A TCP forwarder tests put between a service and RabbitMQ (or MongoDB) to cut it off and let it back.

It runs its own event loop in a thread, so it keeps forwarding whatever the test is doing: awaiting
in the test's loop, or blocking while it starts and kills processes. Every method is synchronous
and returns once the change is in effect.

    with TcpProxy.to_url(rabbitmq_url) as proxy:      # listening from the start
        service_url = proxy.url_for(rabbitmq_url)     # hand this to the service
        proxy.down()   # refuse new connections and reset every open one: the broker is "gone"
        proxy.up()     # back
        proxy.cut()    # reset every open connection but keep listening: a network blip
"""

import asyncio
import threading
from urllib.parse import urlsplit, urlunsplit

from fleet_devtools.localdev import free_port

CONTROL_TIMEOUT = 10.0
CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    @classmethod
    def to_url(cls, url: str, default_port: int = 5672) -> "TcpProxy":
        """A proxy in front of the host and port of `url` (amqp://, mongodb://...), already up."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or default_port)
        proxy.up()
        return proxy

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (user, password, path and query kept)."""
        parts = urlsplit(url)
        auth = f"{parts.username}:{parts.password}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.port}"))

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def connections(self) -> int:
        """Open client connections (each has a twin towards the target)."""
        return len(self._writers) // 2

    def up(self) -> None:
        self._run(self._up())

    def down(self) -> None:
        self._run(self._down())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.down()
        self._run(self._settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT)

    async def _up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._cut()

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _settle(self) -> None:
        """Let the forwarding tasks of the connections just reset finish."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=CONTROL_TIMEOUT / 2)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, target_writer}
        self._writers |= pair
        try:
            await asyncio.gather(self._pipe(client_reader, target_writer), self._pipe(target_reader, client_writer))
        finally:
            self._writers -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            # One side closing or failing ends the pair, as a real connection would.
            writer.transport.abort()
