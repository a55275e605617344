"""`/api/v1/waha/messages`, `/chats/{chatId}/…`: sending (text or media), reacting, editing, deleting,
reading, typing, and a message's media file.

Each is one RabbitMQ round trip, but a media file's bytes: the gateway puts a file to send in the
media store and streams a file out of it, after the persister said whose message it is (ADR 0010).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from fleet_shared.contracts import deterministic_id
from fleet_shared.contracts.commands import (
    ChatActionView,
    DeleteMessage,
    EditMessage,
    GetMedia,
    MarkChatRead,
    MediaRecord,
    MessageActionView,
    OutgoingMedia,
    ReactToMessage,
    RetryMedia,
    SendMessage,
    SentView,
    SetTyping,
)
from fleet_shared.errors import describe
from fleet_shared.http import ApiError
from fleet_shared.ids import ChatId, MessageId
from fleet_shared.media import MediaNotFound, MediaStoreError

from .auth import CurrentUser
from .bus import Bus
from .media_intake import MediaIntake
from .schemas import (
    IDEMPOTENCY_KEY_RE,
    EditBody,
    ReactionBody,
    ReadBody,
    SendMessageBody,
    TypingBody,
    error_responses,
)

router = APIRouter(prefix="/api/v1/waha", tags=["messages"], responses=error_responses(401, 422, 503, 504))

MessageIdPath = Annotated[MessageId, Path(description="a message's id, as the message list gives it")]
ChatIdPath = Annotated[ChatId, Path(description="`<digits>@c.us`, `<digits>@g.us`, `<id>@lid`")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=128, pattern=IDEMPOTENCY_KEY_RE.pattern,
        description="same key, same result, one WhatsApp message",
    ),
]
# The form fields of a multipart send (the file is `file`); any other field is refused.
FORM_FIELDS = frozenset({"chatId", "text", "replyTo", "kind", "mimetype", "file"})

SEND_DESCRIPTION = """
A text: `application/json` `{"chatId", "text", "replyTo"?}`.

A media file (image, document, voice note, video), with an optional caption (`text`):
- from a URL: `application/json` `{"chatId", "text"?, "replyTo"?, "media": {"url", "kind"?, "mimetype"?, "filename"?}}`;
- uploaded: `multipart/form-data` with the fields `chatId`, `text`?, `replyTo`?, `kind`?, `mimetype`? and the
  file as `file` (send `Content-Length`: an upload of unknown length is refused with 411).

At most MEDIA_MAX_BYTES (413 beyond); the type must fit the kind (415). With an `Idempotency-Key` the
same request sends one WhatsApp message however often it is retried, also across a crash.
"""

_SEND_FORM = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SendMessageBody"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["chatId", "file"],
                    "properties": {
                        "chatId": {"type": "string"}, "text": {"type": "string"}, "replyTo": {"type": "string"},
                        "kind": {"type": "string", "enum": ["image", "document", "voice", "video"]},
                        "mimetype": {"type": "string"}, "file": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
        "required": True,
    }
}


def _bus(request: Request) -> Bus:
    return request.app.state.bus


def _media(request: Request) -> MediaIntake:
    return request.app.state.media


@router.post(
    "/messages",
    status_code=201,
    response_model=SentView,
    summary="Send a message: a text, or a media file with a caption",
    description=SEND_DESCRIPTION,
    responses=error_responses(400, 409, 411, 413, 415),
    openapi_extra=_SEND_FORM,
)
async def send_message(request: Request, user: CurrentUser, idempotency_key: IdempotencyKey = None) -> Any:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        command = await _uploaded(request, user.user_id, idempotency_key)
    else:
        body = _json_body(await request.body())
        media = None
        if body.media is not None:
            m = body.media
            media = await _media(request).from_url(user.user_id, m.url, m.kind, m.mimetype, m.filename)
        command = SendMessage(
            chat_id=body.chatId, text=body.text, reply_to=body.replyTo, media=media, idempotency_key=idempotency_key
        )
    # A retried send with the same key carries the same envelope id, so it is recognisable on the bus.
    envelope_id = deterministic_id(user.user_id, "message.send", idempotency_key) if idempotency_key else None
    return await _bus(request).ask_for(SentView, user.user_id, command, envelope_id=envelope_id)


def _json_body(raw: bytes) -> SendMessageBody:
    try:
        return SendMessageBody.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe(exc)) from exc


async def _uploaded(request: Request, user_id: str, idempotency_key: str | None) -> SendMessage:
    intake = _media(request)
    # (its size was checked against MEDIA_MAX_BYTES before anything was read: guard.RequestGuard)
    if not request.headers.get("content-length"):
        raise ApiError(411, "length_required", "an upload must say its size (Content-Length)")
    async with request.form(max_files=1, max_fields=len(FORM_FIELDS)) as form:
        unknown = set(form.keys()) - FORM_FIELDS
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown form fields: {', '.join(sorted(unknown))}")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "media_missing", "a multipart send needs the file as `file`")
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        chat_id, reply_to = _form_ids(fields)
        media: OutgoingMedia = await intake.from_upload(user_id, upload, fields.get("kind"), fields.get("mimetype"))
    try:
        return SendMessage(
            chat_id=chat_id, text=fields.get("text") or None, reply_to=reply_to, media=media,
            idempotency_key=idempotency_key,
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe(exc)) from exc


_CHAT_ID: TypeAdapter[str] = TypeAdapter(ChatId)
_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


def _form_ids(fields: dict[str, str]) -> tuple[str, str | None]:
    try:
        chat_id = _CHAT_ID.validate_python(fields.get("chatId", ""))
        reply_to = _MESSAGE_ID.validate_python(fields["replyTo"]) if fields.get("replyTo") else None
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe(exc)) from exc
    return chat_id, reply_to


@router.get(
    "/messages/{messageId}/media",
    summary="A message's media file",
    description="The file itself, with its type and name. 409 `media_not_stored` while it is still being copied "
    "from WhatsApp (`pending`) or could not be (`failed`: see `POST …/media/retry`). Another user's message: 404.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(404, 409, codes={404: ("media_not_found", "no media for this message"),
                                           409: ("media_not_stored", "the file is pending, not stored yet")}),
    },
)
async def media_file(request: Request, user: CurrentUser, messageId: MessageIdPath) -> StreamingResponse:  # noqa: N803
    record = await _bus(request).ask_for(MediaRecord, user.user_id, GetMedia(message_id=messageId))
    media, stored = record.media, record.media.stored
    if media.status != "stored" or stored is None:
        detail = f": {media.error}" if media.error else ""
        raise ApiError(409, "media_not_stored", f"the file is {media.status}, not stored yet{detail}")
    store = _media(request).store
    chunks = store.read(stored.key)
    try:
        first = await anext(chunks)  # before the answer starts: a missing file can still be a 404
    except StopAsyncIteration:
        first = b""
    except MediaNotFound as exc:
        raise ApiError(404, "media_not_found", "the file is no longer in the media store") from exc
    except MediaStoreError as exc:
        raise ApiError(503, "media_store_unavailable", "the media store is unavailable, retry later") from exc

    async def body() -> Any:
        yield first
        async for chunk in chunks:
            yield chunk

    filename = (media.filename or messageId).replace('"', "")
    headers = {
        "Content-Length": str(stored.size),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(body(), media_type=media.mimetype or "application/octet-stream", headers=headers)


_ACTION_ERRORS = error_responses(404, 409, 502, codes={404: ("session_not_found", "WAHA has no such message")})


@router.put("/messages/{messageId}/reaction", response_model=MessageActionView, summary="React to a message",
            responses=_ACTION_ERRORS)
async def react(request: Request, user: CurrentUser, messageId: MessageIdPath, body: ReactionBody) -> Any:  # noqa: N803
    command = ReactToMessage(message_id=messageId, reaction=body.reaction)
    return await _bus(request).ask_for(MessageActionView, user.user_id, command)


@router.patch("/messages/{messageId}", response_model=MessageActionView, summary="Edit one of the caller's messages",
              responses=_ACTION_ERRORS)
async def edit(request: Request, user: CurrentUser, messageId: MessageIdPath, body: EditBody) -> Any:  # noqa: N803
    command = EditMessage(message_id=messageId, text=body.text)
    return await _bus(request).ask_for(MessageActionView, user.user_id, command)


@router.delete("/messages/{messageId}", response_model=MessageActionView,
               summary="Delete one of the caller's messages for everyone", responses=_ACTION_ERRORS)
async def delete(request: Request, user: CurrentUser, messageId: MessageIdPath) -> Any:  # noqa: N803
    return await _bus(request).ask_for(MessageActionView, user.user_id, DeleteMessage(message_id=messageId))


@router.post("/messages/{messageId}/media/retry", status_code=202, response_model=MessageActionView,
             summary="Copy a message's media from WhatsApp again", responses=_ACTION_ERRORS)
async def retry_media(request: Request, user: CurrentUser, messageId: MessageIdPath) -> Any:  # noqa: N803
    return await _bus(request).ask_for(MessageActionView, user.user_id, RetryMedia(message_id=messageId))


@router.post("/chats/{chatId}/read", response_model=ChatActionView, summary="Mark a chat read (its unread count resets)",
             responses=_ACTION_ERRORS)
async def read(request: Request, user: CurrentUser, chatId: ChatIdPath, body: ReadBody) -> Any:  # noqa: N803
    command = MarkChatRead(chat_id=chatId, message_ids=body.messageIds)
    return await _bus(request).ask_for(ChatActionView, user.user_id, command)


@router.post("/chats/{chatId}/typing", response_model=ChatActionView, summary="Show, or stop showing, the caller typing",
             responses=_ACTION_ERRORS)
async def typing(request: Request, user: CurrentUser, chatId: ChatIdPath, body: TypingBody) -> Any:  # noqa: N803
    command = SetTyping(chat_id=chatId, typing=body.typing)
    return await _bus(request).ask_for(ChatActionView, user.user_id, command)
