"""Calling a URL a user gave: only public addresses (unless an operator allows private ones),
bounded in time and size, redirects followed one checked hop at a time.

A user's URL must never reach what only the services can reach (RabbitMQ's management API, a
cloud's metadata endpoint, the database): the host's every address is checked before each request.
(A DNS answer that changes between the check and the connection could still slip through; the
time between them is kept to one request.)
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 3


class RefusedUrl(ValueError):
    """Not a URL waha-fleet may call (scheme, address, redirect)."""


class FetchFailed(Exception):
    """The URL could not be fetched (unreachable, timed out, answered an error, too large)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, *, allow_private: bool = False) -> None:
    """`RefusedUrl` unless `url` is http(s) and (when `allow_private` is off) every address of its
    host is a public one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl(f"only http and https URLs with a host: {url[:200]!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedUrl(f"{parts.hostname} does not resolve") from exc
    addresses = {info[4][0] for info in infos}
    private = sorted(a for a in addresses if not _is_public(str(a)))
    if private:
        raise RefusedUrl(f"{parts.hostname} is a private or local address ({', '.join(map(str, private))})")


async def fetch(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, timeout: float, allow_private: bool = False
) -> Fetched:
    """GET `url` (see the module) and its body, at most `max_bytes` of it."""
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_REDIRECTS + 1):
                await check_url(url, allow_private=allow_private)
                async with client.stream("GET", url, follow_redirects=False) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise FetchFailed(f"{urlsplit(url).hostname} answered {response.status_code}")
                    return Fetched(await _bounded(response, max_bytes), response.headers.get("content-type"), url)
            raise RefusedUrl(f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError as exc:
        raise FetchFailed(f"no answer within {timeout:.0f}s") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"could not be fetched: {exc.__class__.__name__}") from exc


async def _bounded(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"the file is {declared} bytes, over the {max_bytes}-byte limit", too_large=True)
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchFailed(f"the file is over the {max_bytes}-byte limit", too_large=True)
        chunks.append(chunk)
    return b"".join(chunks)
