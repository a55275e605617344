"""What the broker says about a message's media file: never its bytes (ADR 0010), only what it is
and where waha-fleet keeps it."""

from typing import Literal

from pydantic import Field

from .base import Contract

# What WhatsApp calls the kinds of media messages (`voice` is a voice note, WAHA's `ptt`).
MediaKind = Literal["image", "video", "audio", "voice", "document", "sticker"]
# pending: WAHA has it, waha-fleet is copying it; stored: in the media store; failed: could not be
# copied (`error` says why; `POST /messages/{id}/media/retry` tries again).
MediaStatus = Literal["pending", "stored", "failed"]
SHA256_HEX = r"^[0-9a-f]{64}$"


class MediaRef(Contract):
    """Where a file's bytes are kept: a store (`gridfs`, `s3`) and the key in it."""

    store: Literal["gridfs", "s3"]
    key: str = Field(max_length=512)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_HEX)


class MessageMedia(Contract):
    """A message's media: what it is, and whether waha-fleet holds a copy."""

    kind: MediaKind
    mimetype: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    size: int | None = Field(default=None, ge=0)
    status: MediaStatus = "pending"
    error: str | None = Field(default=None, max_length=500)
    stored: MediaRef | None = None


def media_kind(mimetype: str | None, whatsapp_type: str | None = None) -> MediaKind:
    """The kind of a media message from WhatsApp's own type when it names one, else its mimetype."""
    named = {"image": "image", "video": "video", "audio": "audio", "ptt": "voice", "voice": "voice",
             "document": "document", "sticker": "sticker"}
    if whatsapp_type in named:
        return named[whatsapp_type]  # type: ignore[return-value]
    major = (mimetype or "").split("/", 1)[0].lower()
    if major == "audio":
        return "voice" if "opus" in (mimetype or "").lower() else "audio"
    if major in ("image", "video"):
        return "image" if major == "image" else "video"
    return "document"
