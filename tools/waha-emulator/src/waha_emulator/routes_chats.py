"""/api/{session}/chats: chats, a chat's messages, one message (also edit and delete it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import chatviews
from .deps import (
    created,
    emulator,
    field_errors,
    json_body,
    note_session,
    object_body,
    ok,
    query_choice,
    query_flag,
    query_int,
    serialized_or_500,
)
from .errors import NotFound, ValidationFailed
from .messages import ACK_VALUES, ensure_suffix, sort_page

router = APIRouter(prefix="/api/{session}/chats")

CHAT_SORT = ("conversationTimestamp", "id", "name")
MESSAGE_SORT = ("timestamp", "messageTimestamp")
ORDERS = ("desc", "asc")


def _chat_id(chat_id: str) -> str:
    return chat_id if chat_id == "all" else ensure_suffix(chat_id)


@router.get("")
async def list_chats(request: Request, session: str) -> JSONResponse:
    errors: list[str] = []
    limit = query_int(request, "limit", None, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    sort_by = query_choice(request, "sortBy", CHAT_SORT, "conversationTimestamp", errors)
    order = query_choice(request, "sortOrder", ORDERS, "desc", errors)
    merge = query_flag(request, "merge", True, errors)
    if errors:
        raise ValidationFailed(errors)
    emu = emulator(request)
    s = await emu.sessions.working(session)
    chatviews.require_store(s, emu.config.store_default)
    items = chatviews.chats(s, merge)
    return ok(sort_page(items, lambda c: c.get(sort_by or "conversationTimestamp"), order == "desc", limit, offset))


async def _overview(request: Request, session: str, limit: int | None, offset: int, ids: list[str] | None,
                    merge: bool) -> list[dict[str, Any]]:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    chatviews.require_store(s, emu.config.store_default)
    return [{"id": chat["id"], "name": chat["name"], "picture": chatviews.picture_of(s, chat["id"]),
             "lastMessage": emu.messaging.view(s, last, download=False) if last else None, "_chat": chat}
            for chat, last in chatviews.overview(s, merge, ids, limit, offset)]


@router.get("/overview")
async def chats_overview(request: Request, session: str) -> JSONResponse:
    errors: list[str] = []
    limit = query_int(request, "limit", 20, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    merge = query_flag(request, "merge", True, errors)
    if errors:
        raise ValidationFailed(errors)
    ids = request.query_params.getlist("ids") or None
    return ok(await _overview(request, session, limit, offset, ids, merge))


@router.post("/overview")
async def chats_overview_post(request: Request, session: str) -> JSONResponse:
    """The same with `{"pagination": {"limit", "offset", "merge"}, "filter": {"ids": [...]}}` (for many ids)."""
    body = object_body(await json_body(request, {}))
    pagination = body.get("pagination") or {}
    flt = body.get("filter") or {}
    errors: list[str] = []
    if not isinstance(pagination, dict) or not isinstance(flt, dict):
        raise ValidationFailed(["pagination and filter must be objects"])
    limit, offset = pagination.get("limit", 20), pagination.get("offset", 0)
    for field, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors.append(f"pagination.{field} must be a non-negative number")
    ids = flt.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        errors.append("filter.ids must be an array of strings")
    if errors:
        raise ValidationFailed(errors)
    merge = pagination.get("merge", True) is not False
    return created(await _overview(request, session, limit, offset or 0, ids, merge))


@router.get("/{chat_id}/picture")
async def chat_picture(request: Request, session: str, chat_id: str) -> JSONResponse:
    errors: list[str] = []
    query_flag(request, "refresh", False, errors)
    if errors:
        raise ValidationFailed(errors)
    s = await emulator(request).sessions.working(session)
    return ok({"url": chatviews.picture_of(s, chat_id)})


@router.get("/{chat_id}/messages")
async def chat_messages(request: Request, session: str, chat_id: str) -> JSONResponse:
    errors: list[str] = []
    limit = query_int(request, "limit", 10, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    query_choice(request, "sortBy", MESSAGE_SORT, "timestamp", errors)
    order = query_choice(request, "sortOrder", ORDERS, "desc", errors)
    download = query_flag(request, "downloadMedia", True, errors)
    merge = query_flag(request, "merge", True, errors)
    flt = chatviews.MessageFilter(
        gte=query_int(request, "filter.timestamp.gte", None, errors),
        lte=query_int(request, "filter.timestamp.lte", None, errors),
        from_me=(query_flag(request, "filter.fromMe", False, errors)
                 if request.query_params.get("filter.fromMe") else None),
    )
    ack = query_choice(request, "filter.ack", tuple(ACK_VALUES), None, errors)
    if errors:
        raise ValidationFailed(errors)
    flt.ack = ACK_VALUES[ack] if ack else None
    emu = emulator(request)
    s = await emu.sessions.working(session)
    # Without the store NOWEB still lists what its in-memory store got since the engine started.
    records = chatviews.messages(s.store, _chat_id(chat_id), merge, flt, order == "desc", limit, offset)
    return ok([emu.messaging.view(s, r, download) for r in records])


@router.get("/{chat_id}/messages/{message_id}")
async def chat_message(request: Request, session: str, chat_id: str, message_id: str) -> JSONResponse:
    errors: list[str] = []
    download = query_flag(request, "downloadMedia", True, errors)
    query_flag(request, "merge", True, errors)
    if errors:
        raise ValidationFailed(errors)
    emu = emulator(request)
    s = await emu.sessions.working(session)
    store = chatviews.require_store(s, emu.config.store_default)
    rec = store.find(message_id, _chat_id(chat_id))
    if rec is None:
        raise NotFound("Message not found")
    return ok(emu.messaging.view(s, rec, download))


@router.put("/{chat_id}/messages/{message_id}")
async def edit_message(request: Request, session: str, chat_id: str, message_id: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    errors = field_errors(body, ("text",))
    if errors:
        raise ValidationFailed(errors)
    note_session(request, session)
    emu = emulator(request)
    s = await emu.sessions.working(session)
    serialized_or_500(message_id)
    return ok(emu.actions.edit(s, emu.actions.own(s, chat_id), message_id, body["text"]))


@router.delete("/{chat_id}/messages/{message_id}")
async def delete_message(request: Request, session: str, chat_id: str, message_id: str) -> JSONResponse:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    serialized_or_500(message_id)
    return ok(emu.actions.revoke(s, emu.actions.own(s, chat_id), message_id))
