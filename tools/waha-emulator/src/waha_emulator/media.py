"""Media: the bytes of a message's attachment, WAHA's downloaded files (with their lifetime), URL fetches.

WAHA saves a downloaded attachment as `{session}/{messageId}.{extension}` (MediaLocalStorage) where,
on NOWEB, messageId is the message key's raw id and the extension is mime-types' first extension for
the mimetype; the file is removed WHATSAPP_FILES_LIFETIME seconds after it was saved, and a new
download of a file that still exists reuses it (MediaManager).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import mimetypes
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

# The first extension mime-db lists, which is what mime-types' extension() (used by WAHA) returns.
_EXTENSIONS = {
    "image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
    "video/mp4": "mp4", "video/3gpp": "3gp", "video/quicktime": "mov",
    "audio/ogg": "oga", "audio/mpeg": "mpga", "audio/mp4": "m4a", "audio/aac": "adts", "audio/wav": "wav",
    "application/pdf": "pdf", "application/zip": "zip", "application/octet-stream": "bin",
    "application/msword": "doc", "application/vnd.ms-excel": "xls", "text/plain": "txt", "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}

# File signatures, so generated attachments start like real ones.
_MAGIC = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ", "video/mp4": b"\x00\x00\x00\x18ftypmp42",
    "audio/ogg": b"OggS\x00\x02", "audio/mpeg": b"ID3\x03\x00", "application/pdf": b"%PDF-1.4\n",
    "application/zip": b"PK\x03\x04",
}

KIND_DEFAULT_MIMETYPES = {
    "image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg", "ptt": "audio/ogg; codecs=opus",
    "document": "application/octet-stream", "sticker": "image/webp", "ptv": "video/mp4",
}
VOICE_MIMETYPE = "audio/ogg; codecs=opus"

# Baileys' message content key for each kind of attachment.
CONTENT_KEYS = {
    "image": "imageMessage", "video": "videoMessage", "audio": "audioMessage", "ptt": "audioMessage",
    "document": "documentMessage", "sticker": "stickerMessage", "ptv": "ptvMessage",
}


def base_mimetype(mimetype: str) -> str:
    return mimetype.split(";", 1)[0].strip().lower()


def extension(mimetype: str) -> str:
    base = base_mimetype(mimetype)
    if base in _EXTENSIONS:
        return _EXTENSIONS[base]
    guessed = mimetypes.guess_extension(base)
    return guessed.lstrip(".") if guessed else "bin"


def generated_bytes(seed: str, size: int, mimetype: str) -> bytes:
    """`size` bytes that depend only on `seed`: a file signature for the mimetype, then a SHA-256 stream."""
    out = bytearray(_MAGIC.get(base_mimetype(mimetype), b"")[:size])
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def decode_base64(data: str) -> bytes:
    """Lenient like Node's Buffer.from(data, 'base64'): stray characters are skipped, padding is optional."""
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)  # well-formed: at once (the filter below takes ~65 ms a MB)
    except binascii.Error:
        pass
    cleaned = "".join(c for c in data.replace("-", "+").replace("_", "/") if c.isalnum() or c in "+/")
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4 if len(cleaned) % 4 == 1 else len(cleaned)]
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except binascii.Error:
        return b""


@dataclass(slots=True, eq=False)
class Media:
    """An attachment as WhatsApp holds it; `data` None means generated from `seed`."""

    kind: str
    mimetype: str
    filename: str | None
    size: int
    seed: str
    data: bytes | None = None
    _digest: bytes | None = None

    def content(self) -> bytes:
        return self.data if self.data is not None else generated_bytes(self.seed, self.size, self.mimetype)

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = hashlib.sha256(self.content()).digest()
        return self._digest

    @property
    def sha256(self) -> str:
        return self.digest.hex()


@dataclass(slots=True, eq=False)
class StoredFile:
    media: Media
    expires_at: float | None  # monotonic seconds; None: kept forever (lifetime 0)


class FileStore:
    """WAHA's downloaded files, by key `{session}/{rawId}.{ext}`; each lives `lifetime` seconds (0: forever)."""

    def __init__(self, lifetime: float, keep: int = 10_000) -> None:
        self.lifetime = lifetime
        self.keep = keep
        self._files: OrderedDict[str, StoredFile] = OrderedDict()

    @staticmethod
    def key(session: str, raw_id: str, media: Media) -> str:
        return f"{session}/{raw_id}.{extension(media.mimetype)}"

    def _alive(self, key: str) -> StoredFile | None:
        f = self._files.get(key)
        if f is not None and f.expires_at is not None and time.monotonic() >= f.expires_at:
            del self._files[key]
            return None
        return f

    def save(self, session: str, raw_id: str, media: Media) -> str:
        """The file's key; saved (with a fresh lifetime) unless a live copy exists."""
        key = self.key(session, raw_id, media)
        if self._alive(key) is None:
            expires = time.monotonic() + self.lifetime if self.lifetime > 0 else None
            self._files[key] = StoredFile(media, expires)
            while len(self._files) > self.keep:
                self._files.popitem(last=False)
        return key

    def get(self, key: str) -> Media | None:
        f = self._alive(key)
        return f.media if f is not None else None

    def clear(self) -> None:
        self._files.clear()


class FetchFailed(Exception):
    """A `file.url` could not be fetched (the engine's axios error, surfaced by WAHA as a 500)."""


async def fetch_url(url: str, timeout: float, max_bytes: int) -> bytes:
    """GET `url` within `timeout` seconds in all (a slow trickle too) and `max_bytes`."""
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, timeout, max_bytes)
    except TimeoutError as exc:
        raise FetchFailed(f"timeout of {int(timeout * 1000)}ms exceeded") from exc


async def _fetch(url: str, timeout: float, max_bytes: int) -> bytes:
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, trust_env=False) as client:
            async with client.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    raise FetchFailed(f"Request failed with status code {resp.status_code}")
                chunks: list[bytes] = []
                total = 0
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise FetchFailed(f"maxContentLength size of {max_bytes} exceeded")
                    chunks.append(chunk)
                return b"".join(chunks)
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"timeout of {int(timeout * 1000)}ms exceeded") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
