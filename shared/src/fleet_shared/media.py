"""The media store: where media files' bytes are kept (never on the broker: ADR 0010).

One small port, `MediaStore`, with two adapters: MongoDB GridFS (the default; it works on the
embedded MongoDB-wire server too) and an S3-compatible object store (production option, MinIO in
compose). The orchestrator puts inbound media there; the gateway puts uploads there and streams a
user's downloads out of it (after the persister said the message is the user's).

Keys are the store's file names. `media_key` derives an inbound file's from its user and message,
so a fetch repeated (a redelivery, two webhooks of one message) writes the same file once.
"""

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, Protocol

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from .contracts.media import MediaRef

CHUNK = 256 * 1024
BUCKET = "media"


class MediaNotFound(Exception):
    pass


class MediaStoreError(Exception):
    """The store could not do it now (down, refused): try again later."""


class MediaStore(Protocol):
    @property
    def name(self) -> Literal["gridfs", "s3"]: ...

    async def put(self, key: str, data: bytes, mimetype: str | None) -> MediaRef:
        """Store `data` under `key`; a key stored already keeps its first bytes (and answers them)."""
        ...

    async def find(self, key: str) -> MediaRef | None: ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The bytes in chunks; `MediaNotFound` when there is no such file."""
        ...

    async def delete(self, key: str) -> None: ...


def media_key(user_id: str, message_id: str) -> str:
    """The key of a message's media: one file per user and message."""
    return f"messages/{user_id}/{message_id}"


def upload_key(user_id: str, upload_id: str) -> str:
    """The key of a file a user uploaded to send."""
    return f"uploads/{user_id}/{upload_id}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class GridFSMediaStore:
    """Files in GridFS (`media.files`, `media.chunks`), the key as the file's `_id`."""

    name: Literal["gridfs"] = "gridfs"

    def __init__(self, db: AsyncDatabase) -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK)
        self._files = db[f"{BUCKET}.files"]

    async def put(self, key: str, data: bytes, mimetype: str | None) -> MediaRef:
        ref = MediaRef(store=self.name, key=key, size=len(data), sha256=sha256_of(data))
        try:
            await self._bucket.upload_from_stream_with_id(
                key, key, data, metadata={"mimetype": mimetype, "sha256": ref.sha256}
            )
        except FileExists:
            return await self.find(key) or ref  # stored already (a repeated fetch): those bytes stay
        except PyMongoError as exc:
            raise MediaStoreError(f"GridFS did not take {key}: {exc!r}") from exc
        return ref

    async def find(self, key: str) -> MediaRef | None:
        try:
            doc = await self._files.find_one({"_id": key})
        except PyMongoError as exc:
            raise MediaStoreError(f"GridFS could not be asked for {key}: {exc!r}") from exc
        if doc is None:
            return None
        return MediaRef(store=self.name, key=key, size=doc["length"], sha256=(doc.get("metadata") or {})["sha256"])

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            stream = await self._bucket.open_download_stream(key)
            while chunk := await stream.readchunk():
                yield chunk
        except NoFile as exc:
            raise MediaNotFound(key) from exc
        except PyMongoError as exc:
            raise MediaStoreError(f"GridFS could not read {key}: {exc!r}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._bucket.delete(key)
        except NoFile:
            pass
        except PyMongoError as exc:
            raise MediaStoreError(f"GridFS could not delete {key}: {exc!r}") from exc


class S3MediaStore:
    """Objects in one bucket of an S3-compatible store (aiobotocore), the key as the object key."""

    name: Literal["s3"] = "s3"

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client  # an aiobotocore S3 client, opened by `open_media_store`
        self._bucket = bucket

    async def put(self, key: str, data: bytes, mimetype: str | None) -> MediaRef:
        existing = await self.find(key)
        if existing is not None:
            return existing
        sha = sha256_of(data)
        with _s3_errors(key):
            await self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=mimetype or "application/octet-stream",
                Metadata={"sha256": sha},
            )
        return MediaRef(store=self.name, key=key, size=len(data), sha256=sha)

    async def find(self, key: str) -> MediaRef | None:
        try:
            with _s3_errors(key):
                head = await self._s3.head_object(Bucket=self._bucket, Key=key)
        except MediaNotFound:
            return None
        return MediaRef(store=self.name, key=key, size=head["ContentLength"], sha256=head["Metadata"]["sha256"])

    async def read(self, key: str) -> AsyncIterator[bytes]:
        with _s3_errors(key):
            answer = await self._s3.get_object(Bucket=self._bucket, Key=key)
            async with answer["Body"] as body:
                while chunk := await body.read(CHUNK):
                    yield chunk

    async def delete(self, key: str) -> None:
        with _s3_errors(key):
            await self._s3.delete_object(Bucket=self._bucket, Key=key)


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """S3's answers as the port's errors: no such key is `MediaNotFound`, anything else the store's failure."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise MediaNotFound(key) from exc
        raise MediaStoreError(f"S3 refused {key}: {exc!r}") from exc
    except BotoCoreError as exc:
        raise MediaStoreError(f"S3 unreachable for {key}: {exc!r}") from exc


class MediaSettings(BaseSettings):
    """Mixin for the services that read or write media files (gateway, orchestrator)."""

    # gridfs: the MongoDB at MONGODB_URL (database MEDIA_DATABASE); s3: the bucket below.
    media_store: Literal["gridfs", "s3"] = "gridfs"
    media_database: str = "waha_fleet_media"
    # Files larger than this are neither sent nor stored (WhatsApp's own limit for media is 16 MB
    # for most kinds, 100 MB for documents).
    media_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    s3_endpoint_url: str | None = None  # e.g. http://minio:9000; None: AWS
    s3_bucket: str = "waha-fleet-media"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None


@asynccontextmanager
async def open_media_store(settings: MediaSettings, mongo: AsyncMongoClient | None) -> AsyncIterator[MediaStore]:
    """The store `settings` name, open for as long as the context lasts. GridFS needs `mongo`."""
    if settings.media_store == "gridfs":
        if mongo is None:
            raise ValueError("MEDIA_STORE=gridfs needs a MongoDB client (MONGODB_URL)")
        yield GridFSMediaStore(mongo[settings.media_database])
        return
    from aiobotocore.session import get_session

    secret = settings.s3_secret_access_key
    async with get_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    ) as client:
        yield S3MediaStore(client, settings.s3_bucket)
