"""Issue 22.5: no work before authentication, no body over its route's limit read. Over a real
socket: the gateway answers before the client has sent what it announced."""

import asyncio

import pytest

from .conftest import auth, gateway_settings
from .test_live_events import served

pytestmark = pytest.mark.integration

HUNDRED_MIB = 100 * 1024 * 1024


@pytest.fixture
async def base(topology, rabbitmq_url):
    settings = gateway_settings(rabbitmq_url=rabbitmq_url, broker_prefix=topology.prefix,
                                orchestrator_partitions=topology.partitions, media_max_bytes=1024 * 1024)
    async with served(settings) as (_, address):
        yield address


async def answer_before_the_body(address: str, head: str, sent: bytes = b"{") -> tuple[int, bytes]:
    """Send `head` and the first bytes of its body only; the status and body the gateway answers."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + sent)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        response = await asyncio.wait_for(reader.read(65536), 5)
        return int(status_line.split()[1]), response
    finally:
        writer.close()


def request(method: str, path: str, length: int, *headers: str, content_type: str = "application/json") -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", f"Content-Type: {content_type}", f"Content-Length: {length}", *headers]
    return "\r\n".join(lines) + "\r\n"


async def test_an_anonymous_100_mib_body_is_401_before_it_is_read(base):
    status, body = await answer_before_the_body(base, request("POST", "/api/v1/waha/messages", HUNDRED_MIB))
    assert status == 401 and b"missing bearer token" in body
    status, body = await answer_before_the_body(
        base, request("POST", "/api/v1/waha/messages", HUNDRED_MIB, "Authorization: Bearer not-a-jwt"))
    assert status == 401 and b"invalid_token" in body


async def test_a_declared_body_over_its_routes_limit_is_413_before_it_is_read(base):
    token = auth("alice")["Authorization"]
    status, body = await answer_before_the_body(
        base, request("PATCH", "/api/v1/waha/messages/false_1@c.us_AAA", 2 * 1024 * 1024, f"Authorization: {token}"))
    assert status == 413 and b"payload_too_large" in body and b"API_MAX_BODY_BYTES" in body
    status, body = await answer_before_the_body(
        base, request("POST", "/api/v1/waha/messages", HUNDRED_MIB, f"Authorization: {token}",
                      content_type="multipart/form-data; boundary=x"), b"--x\r\n")
    assert status == 413 and b"media_too_large" in body and b"MEDIA_MAX_BYTES" in body


async def test_the_status_read_ahead_of_fastapi_checks_what_the_guard_checks_in_its_order(base):
    """`status_route` answers GET /status without FastAPI: the token first, then the declared size."""
    status, body = await answer_before_the_body(base, request("GET", "/api/v1/waha/status", 2 * 1024 * 1024))
    assert status == 401 and b"missing bearer token" in body and b"www-authenticate: Bearer" in body
    token = auth("alice")["Authorization"]
    status, body = await answer_before_the_body(
        base, request("GET", "/api/v1/waha/status", 2 * 1024 * 1024, f"Authorization: {token}"))
    assert status == 413 and b"payload_too_large" in body and b"API_MAX_BODY_BYTES" in body

async def test_a_streamed_body_past_its_limit_is_413(base):
    token = auth("alice")["Authorization"]
    host, port = base.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(("PATCH /api/v1/waha/messages/false_1@c.us_AAA HTTP/1.1\r\nHost: gateway\r\n"
                      f"Authorization: {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"x" * 65536
        for _ in range(40):  # 2.5 MiB, past the 1 MiB limit
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert int(status_line.split()[1]) == 413
        assert b"payload_too_large" in await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


async def test_the_console_docs_and_unknown_paths_are_not_asked_for_a_token(base):
    host, port = base.split(":")
    for path, expected in (("/", 200), ("/openapi.json", 200), ("/api/v1/nothing-here", 404)):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode())
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert int(status_line.split()[1]) == expected, path
