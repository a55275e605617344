"""Models of the public API: requests (camelCase, unknown fields refused), answers, the error shape."""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet_shared.contracts.commands import MAX_PAGE, MAX_READ_IDS, MAX_TEXT
from fleet_shared.contracts.events import SessionStatus
from fleet_shared.ids import ChatId, MessageId

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaByUrl(Strict):
    url: str = Field(max_length=2048, description="http(s) URL of the file; fetched by waha-fleet, at most MEDIA_MAX_BYTES")
    kind: Literal["image", "document", "voice", "video"] | None = Field(
        default=None, description="what to send it as; by default what its type says (any other type: a document)"
    )
    mimetype: str | None = Field(default=None, max_length=255, description="its type, if the URL's server does not say")
    filename: str | None = Field(default=None, max_length=255)


class SendMessageBody(Strict):
    chatId: ChatId = Field(description="`<digits>@c.us`, `<digits>@g.us`, `<id>@lid`, or a bare phone number")
    text: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, description="the text; a media message's caption"
    )
    replyTo: MessageId | None = Field(default=None, description="id of the message answered")
    media: MediaByUrl | None = Field(default=None, description="a file to send (or upload it: multipart/form-data)")

    @model_validator(mode="after")
    def _text_or_media(self) -> "SendMessageBody":
        if self.text is None and self.media is None:
            raise ValueError("a message needs a text or a media file")
        return self


class ReactionBody(Strict):
    reaction: str = Field(max_length=16, description='an emoji; "" takes the reaction back')


class EditBody(Strict):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class ReadBody(Strict):
    messageIds: list[MessageId] | None = Field(
        default=None, max_length=MAX_READ_IDS, description="only these (by default: all the chat's)"
    )


class TypingBody(Strict):
    typing: bool = Field(description="true: the user is typing; false: stopped")


class PageQuery(Strict):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=512, description="`nextCursor` of the previous page")


class MessagesQuery(Strict):
    chatId: ChatId
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    before: str | None = Field(default=None, max_length=512, description="`nextCursor` of the previous page")


class PairingCodeBody(Strict):
    phoneNumber: str = Field(
        pattern=r"^[0-9]{7,15}$", description="the phone's number in international form, digits only (no `+`, no spaces)",
        examples=["4915112345678"],
    )


class QrQuery(Strict):
    format: Literal["json", "image"] = Field(default="json", description="`image` answers the PNG itself")


class SessionStatusView(BaseModel):
    """What a session command answers: the status the session is in (or moving to) now."""

    status: SessionStatus


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


# What each status means most often; a route names its own `code` where it differs.
ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("invalid_cursor", "cursor is not one this service handed out"),
    401: ("unauthorized", "missing bearer token"),
    403: ("forbidden", "an admin token is required"),
    404: ("not_found", "no session is known for this user"),
    409: ("session_not_working", "the session is SCAN_QR_CODE, not WORKING"),
    411: ("length_required", "an upload must say its size (Content-Length)"),
    413: ("media_too_large", "the file is over the 16777216-byte limit (MEDIA_MAX_BYTES)"),
    415: ("unsupported_media_type", "a image must be image/*, not application/pdf"),
    422: ("invalid_request", "query.limit: Input should be less than or equal to 200"),
    426: ("upgrade_required", "connect with a WebSocket (Upgrade: websocket)"),
    429: ("session_limit_reached", "the fleet runs its maximum number of sessions (MAX_SESSIONS)"),
    501: ("not_implemented", "not implemented yet"),
    502: ("bad_reply", "malformed answer to session.get"),
    503: ("broker_unavailable", "the message broker is unavailable, retry later"),
    504: ("timeout", "no answer to session.get in time"),
}


def error_responses(*statuses: int, codes: dict[int, tuple[str, str]] | None = None) -> dict[int | str, dict]:
    """OpenAPI `responses` for these error statuses, each with an example (`codes` overrides it)."""
    chosen = {**ERROR_EXAMPLES, **(codes or {})}
    return {
        s: {
            "model": ErrorResponse,
            "content": {"application/json": {"example": {"error": dict(zip(("code", "message"), chosen[s], strict=True))}}},
        }
        for s in statuses
    }


class EventsTicket(BaseModel):
    ticket: str = Field(description="pass it as `?ticket=` when opening `/api/v1/events`; it opens one socket")
    expiresIn: int = Field(description="seconds it stays valid")
