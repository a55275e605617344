"""Request models of the public API (camelCase, unknown fields refused) and the error shape."""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.contracts.commands import MAX_PAGE
from fleet_shared.ids import ChatId

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendMessageBody(Strict):
    chatId: ChatId = Field(description="`<digits>@c.us`, `<digits>@g.us`, `<id>@lid`, or a bare phone number")
    text: str = Field(min_length=1, max_length=65536)
    replyTo: str | None = Field(default=None, max_length=512, description="id of the message answered")


class PageQuery(Strict):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=512, description="`nextCursor` of the previous page")


class MessagesQuery(Strict):
    chatId: ChatId
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    before: str | None = Field(default=None, max_length=512, description="`nextCursor` of the previous page")


class QrQuery(Strict):
    format: Literal["json", "image"] = Field(default="json", description="`image` answers the PNG itself")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict]:
    return {s: {"model": ErrorResponse} for s in statuses}
