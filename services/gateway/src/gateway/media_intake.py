"""A file a user sends: an upload or a URL, checked and put in the media store (ADR 0010), so the
command to the orchestrator carries where it is, never its bytes.

Refused, with nothing stored: no file (400), a URL that is not public or cannot be fetched (422), a
file over MEDIA_MAX_BYTES (413), a file whose type does not fit the kind asked for (415).
"""

import mimetypes
from dataclasses import dataclass
from typing import Literal

import httpx
from starlette.datastructures import UploadFile

from fleet_shared.contracts.commands import OutgoingMedia
from fleet_shared.contracts.media import media_kind
from fleet_shared.http import ApiError
from fleet_shared.media import MediaStore, MediaStoreError, sha256_of, upload_key
from fleet_shared.outbound import FetchFailed, RefusedUrl, fetch

SendKind = Literal["image", "document", "voice", "video"]
SEND_KINDS: tuple[SendKind, ...] = ("image", "document", "voice", "video")
# What each kind may be; a document may be anything.
KIND_TYPES = {"image": "image/", "video": "video/", "voice": "audio/"}
UPLOAD_CHUNK = 256 * 1024
FETCH_TIMEOUT = 30.0


def too_large(limit: int) -> ApiError:
    return ApiError(413, "media_too_large", f"the file is over the {limit}-byte limit (MEDIA_MAX_BYTES)")


def kind_for(kind: str | None, mimetype: str) -> SendKind:
    """The kind asked for, or the one the file's type says; 415 when they do not fit."""
    if kind is None:
        guessed = {"audio": "voice", "sticker": "image"}.get(media_kind(mimetype), media_kind(mimetype))
        return next((k for k in SEND_KINDS if k == guessed), "document")
    chosen = next((k for k in SEND_KINDS if k == kind), None)
    if chosen is None:
        raise ApiError(422, "invalid_request", f"kind must be one of {', '.join(SEND_KINDS)}")
    prefix = KIND_TYPES.get(chosen)
    if prefix is not None and not mimetype.lower().startswith(prefix):
        raise ApiError(415, "unsupported_media_type", f"a {chosen} must be {prefix}*, not {mimetype}")
    return chosen


def mimetype_of(given: str | None, declared: str | None, filename: str | None) -> str:
    """The file's type: as the client says, else as the upload or the server declared it, else by its name."""
    for candidate in (given, declared, mimetypes.guess_type(filename or "")[0]):
        if candidate and "/" in candidate and candidate.split(";")[0].strip() != "application/octet-stream":
            return candidate.split(";")[0].strip() if candidate != given else candidate
    return "application/octet-stream"


@dataclass
class MediaIntake:
    store: MediaStore
    http: httpx.AsyncClient
    max_bytes: int
    allow_private_urls: bool = False

    async def from_upload(self, user_id: str, upload: UploadFile, kind: str | None, mimetype: str | None) -> OutgoingMedia:
        data = await self._read(upload)
        if not data:
            raise ApiError(400, "media_missing", "the file is empty")
        chosen = mimetype_of(mimetype, upload.content_type, upload.filename)
        return await self._store(user_id, data, kind_for(kind, chosen), chosen, upload.filename)

    async def from_url(
        self, user_id: str, url: str, kind: str | None, mimetype: str | None, filename: str | None
    ) -> OutgoingMedia:
        try:
            fetched = await fetch(
                self.http, url, max_bytes=self.max_bytes, timeout=FETCH_TIMEOUT, allow_private=self.allow_private_urls
            )
        except RefusedUrl as exc:
            raise ApiError(422, "media_url_refused", str(exc)) from exc
        except FetchFailed as exc:
            if exc.too_large:
                raise too_large(self.max_bytes) from exc
            raise ApiError(422, "media_url_failed", f"the media URL {exc}") from exc
        if not fetched.data:
            raise ApiError(422, "media_url_failed", "the media URL answered an empty file")
        name = filename or fetched.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None
        chosen = mimetype_of(mimetype, fetched.content_type, name)
        return await self._store(user_id, fetched.data, kind_for(kind, chosen), chosen, name)

    async def _read(self, upload: UploadFile) -> bytes:
        chunks, size = [], 0
        while chunk := await upload.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large(self.max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _store(self, user_id: str, data: bytes, kind: SendKind, mimetype: str, filename: str | None) -> OutgoingMedia:
        """Under a key of the file's own hash: the same file sent again is stored once, and an
        Idempotency-Key reused with another file is told apart (its fingerprint differs)."""
        try:
            stored = await self.store.put(upload_key(user_id, sha256_of(data)), data, mimetype)
        except MediaStoreError as exc:
            raise ApiError(503, "media_store_unavailable", "the media store is unavailable, retry later",
                           {"Retry-After": "1"}) from exc
        return OutgoingMedia(kind=kind, mimetype=mimetype, filename=(filename or None) and filename[:255], stored=stored)
