"""The user's own actions: PUT /api/reaction, POST /api/sendSeen, start/stopTyping, /api/{session}/presence."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .actions import PRESENCES
from .deps import created, emulator, field_errors, json_body, note_session, object_body, ok, serialized_or_500
from .errors import ObjectError, ValidationFailed
from .messages import parse_serialized_id

router = APIRouter()


def _empty(status: int) -> Response:
    # NestJS sends an empty body when a handler returns nothing.
    return Response(status_code=status)


@router.put("/api/reaction")
async def reaction(request: Request) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    errors = field_errors(body, ("session", "messageId", "reaction"))
    if errors:
        raise ValidationFailed(errors)
    note_session(request, body["session"])
    emu = emulator(request)
    s = await emu.sessions.working(body["session"])
    serialized_or_500(body["messageId"])
    parsed = parse_serialized_id(body["messageId"])
    assert parsed is not None
    return ok(emu.actions.react(s, emu.actions.own(s, parsed[1]), body["messageId"], body["reaction"]))


@router.post("/api/sendSeen")
async def send_seen(request: Request) -> Response:
    body = object_body(await json_body(request, {}))
    errors = field_errors(body, ("session", "chatId"), ("messageId", "participant"))
    ids = body.get("messageIds")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        errors.append("messageIds must be an array of strings")
    if errors:
        raise ValidationFailed(errors)
    note_session(request, body["session"])
    emu = emulator(request)
    s = await emu.sessions.working(body["session"])
    message_ids = list(ids or []) + ([body["messageId"]] if body.get("messageId") else [])
    answer = emu.actions.seen(s, body["chatId"], message_ids, body.get("participant"))
    return created(answer) if answer is not None else _empty(201)


async def _typing(request: Request, start: bool) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    errors = field_errors(body, ("session", "chatId"))
    if errors:
        raise ValidationFailed(errors)
    note_session(request, body["session"])
    emu = emulator(request)
    s = await emu.sessions.working(body["session"])
    emu.actions.typing(s, body["chatId"], start)
    return created({"result": True})


@router.post("/api/startTyping")
async def start_typing(request: Request) -> JSONResponse:
    return await _typing(request, True)


@router.post("/api/stopTyping")
async def stop_typing(request: Request) -> JSONResponse:
    return await _typing(request, False)


@router.post("/api/{session}/presence")
async def set_presence(request: Request, session: str) -> Response:
    body = object_body(await json_body(request, {}))
    presence = body.get("presence")
    errors = [] if isinstance(presence, str) and presence in PRESENCES else [f"presence must be one of the following values: {', '.join(PRESENCES)}"]
    errors += field_errors(body, (), ("chatId",))
    if errors or not isinstance(presence, str):
        raise ValidationFailed(errors)
    chat_id = body.get("chatId")
    global_scope = presence in ("online", "offline")
    if global_scope and chat_id:
        raise ObjectError(400, {"detail": f"'{presence}' presence works on the global scope and doesn't "
                                          "require 'chatId' field."})
    if not global_scope and not chat_id:
        raise ObjectError(400, {"detail": f"'{presence}' presence requires 'chatId' field."})
    emu = emulator(request)
    s = await emu.sessions.working(session)
    emu.actions.set_presence(s, presence, chat_id)
    return _empty(201)
