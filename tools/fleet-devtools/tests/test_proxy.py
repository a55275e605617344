"""The tests' TCP proxy: forwards, refuses while down, resets open connections when cut."""

import asyncio

import pytest

from fleet_devtools.testing.proxy import TcpProxy


@pytest.fixture
async def echo():
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def round_trip(port: int, data: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 5)
    finally:
        writer.close()


async def test_forwards_refuses_when_down_and_resets_when_cut(echo):
    with TcpProxy.to_url(f"amqp://u:p@127.0.0.1:{echo}/vh") as proxy:
        assert proxy.url_for("amqp://u:p@broker:5672/vh?x=1") == f"amqp://u:p@127.0.0.1:{proxy.port}/vh?x=1"
        assert await round_trip(proxy.port) == b"ping"

        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        assert await reader.read(10) == b"a"
        proxy.cut()
        assert await asyncio.wait_for(reader.read(10), 5) == b""  # reset: the connection is gone
        writer.close()
        assert await round_trip(proxy.port) == b"ping"  # still listening

        proxy.down()
        assert not proxy.listening
        with pytest.raises(OSError):
            await round_trip(proxy.port)
        proxy.up()
        assert await round_trip(proxy.port) == b"ping"
