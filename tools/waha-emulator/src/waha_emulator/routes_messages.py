"""Sending: POST /api/sendText, /api/sendImage, /api/sendFile, /api/sendVoice, /api/sendVideo, new-message-id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import created, emulator, field_errors, json_body, note_session, object_body, ok
from .errors import EngineError, TextError, ValidationFailed
from .media import KIND_DEFAULT_MIMETYPES, VOICE_MIMETYPE, FetchFailed, Media, decode_base64, fetch_url
from .messages import RAW_ID_RE, new_sent_raw_id
from .state import Session

router = APIRouter()

# endpoint -> the WhatsApp message kind it makes
MEDIA_ENDPOINTS = {"image": "image", "file": "document", "voice": "ptt", "video": "video"}
_SIGNATURES = ((b"%PDF", "application/pdf"), (b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF8", "image/gif"), (b"PK\x03\x04", "application/zip"), (b"OggS", "audio/ogg"))


def _send_fields(body: dict[str, Any], required: tuple[str, ...]) -> list[str]:
    errors = field_errors(body, ("session", "chatId", *required), ("reply_to",))
    message_id = body.get("id")
    if message_id is not None and (not isinstance(message_id, str) or not RAW_ID_RE.fullmatch(message_id)):
        errors.append("id must be a message id from GET /api/{session}/new-message-id")
    return errors


@router.post("/api/sendText")
async def send_text(request: Request) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    errors = _send_fields(body, ("text",))
    if errors:
        raise ValidationFailed(errors)
    note_session(request, body["session"])
    emu = emulator(request)
    s = await emu.sessions.working(body["session"])
    return created(emu.messaging.send_text(s, body["chatId"], body["text"], body.get("reply_to"), body.get("id")))


def detect_mimetype(content: bytes) -> str:
    return next((m for sig, m in _SIGNATURES if content.startswith(sig)), "application/octet-stream")


async def _file_content(request: Request, file: dict[str, Any]) -> bytes:
    config = emulator(request).config
    if isinstance(file.get("url"), str):
        try:
            return await fetch_url(file["url"], config.media_fetch_timeout, config.media_max_bytes)
        except FetchFailed as exc:
            raise EngineError(str(exc), "AxiosError") from exc
    if isinstance(file.get("data"), str):
        return decode_base64(file["data"])
    raise TextError(422, 'Either "file.url" or "file.data" must be specified.')


async def _send_media(request: Request, endpoint: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    errors = _send_fields(body, ())
    errors += field_errors(body, (), ("caption",))
    file = body.get("file")
    if not isinstance(file, dict):
        errors.append("file must be an object")
    else:
        errors += [f"file.{e}" for e in field_errors(file, (), ("mimetype", "filename", "url", "data"))]
    errors += field_errors(body, (), ("convert", "asNote"), kind=bool, noun="a boolean value")
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(file, dict)
    note_session(request, body["session"])
    emu = emulator(request)
    s: Session = await emu.sessions.working(body["session"])
    content = await _file_content(request, file)
    kind = MEDIA_ENDPOINTS[endpoint]
    if endpoint == "video" and body.get("asNote"):
        kind = "ptv"
    mimetype = file.get("mimetype") or (detect_mimetype(content) if kind == "document"
                                        else KIND_DEFAULT_MIMETYPES[kind])
    if body.get("convert"):  # the emulator does not transcode; the result is labelled as WAHA labels it
        mimetype = VOICE_MIMETYPE if kind == "ptt" else "video/mp4"
    raw_id = body.get("id") or new_sent_raw_id()
    media = Media(kind=kind, mimetype=mimetype, filename=file.get("filename") if kind == "document" else None,
                  size=len(content), seed=raw_id, data=content)
    extra = {"filename": file.get("filename"), "convert": body.get("convert"), "asNote": body.get("asNote")}
    return created(emu.messaging.send_media(s, endpoint, body["chatId"], media, body.get("caption"),
                                            body.get("reply_to"), raw_id, **extra))


def _media_route(endpoint: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def send(request: Request) -> JSONResponse:
        return await _send_media(request, endpoint)

    send.__name__ = f"send_{endpoint}"
    return send


for _endpoint in MEDIA_ENDPOINTS:  # POST /api/sendImage, /api/sendFile, /api/sendVoice, /api/sendVideo
    router.add_api_route(f"/api/send{_endpoint.capitalize()}", _media_route(_endpoint), methods=["POST"])


@router.get("/api/{session}/new-message-id")
async def new_message_id(request: Request, session: str) -> JSONResponse:
    """An id for the next message, to pass as a send's `id` (WAHA generates it; it is not reserved)."""
    await emulator(request).sessions.working(session)
    return ok({"id": new_sent_raw_id()})
