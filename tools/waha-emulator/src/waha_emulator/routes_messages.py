"""Sending (POST /api/sendText) and reading (chats, chat messages) from the in-memory log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import created, emulator, json_body, note_session, ok, query_bool
from .errors import NotFound, ValidationFailed
from .messages import RAW_ID_RE, chat_of, chats_view, ensure_suffix, new_sent_raw_id, sort_page

router = APIRouter()


def _int(request: Request, name: str, default: int | None, errors: list[str]) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name} must be an integer number")
        return default
    if value < 0:
        errors.append(f"{name} must not be less than 0")
    return value


@router.post("/api/sendText")
async def send_text(request: Request) -> JSONResponse:
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise ValidationFailed(["body must be an object"])
    errors = [f"{field} must be a string" for field in ("session", "chatId", "text")
              if not isinstance(body.get(field), str)]
    reply_to = body.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        errors.append("reply_to must be a string")
    message_id = body.get("id")
    if message_id is not None and (not isinstance(message_id, str) or not RAW_ID_RE.fullmatch(message_id)):
        errors.append("id must be a message id from GET /api/{session}/new-message-id")
    if errors:
        raise ValidationFailed(errors)
    note_session(request, body["session"])
    emu = emulator(request)
    s = await emu.sessions.working(body["session"])
    return created(emu.messaging.send_text(s, body["chatId"], body["text"], reply_to, message_id))


@router.get("/api/{session}/new-message-id")
async def new_message_id(request: Request, session: str) -> JSONResponse:
    """An id for the next message, to pass as sendText's `id` (WAHA generates it; it is not reserved)."""
    await emulator(request).sessions.working(session)
    return ok({"id": new_sent_raw_id()})


@router.get("/api/{session}/chats")
async def list_chats(request: Request, session: str) -> JSONResponse:
    errors: list[str] = []
    limit = _int(request, "limit", None, errors)
    offset = _int(request, "offset", 0, errors) or 0
    if errors:
        raise ValidationFailed(errors)
    s = await emulator(request).sessions.working(session)
    sort_by = request.query_params.get("sortBy") or "conversationTimestamp"
    return ok(sort_page(chats_view(s.messages), sort_by, request.query_params.get("sortOrder"), limit, offset))


def _filtered(request: Request, messages: list[dict[str, Any]], chat_id: str) -> list[dict[str, Any]]:
    q = request.query_params
    errors: list[str] = []
    gte = _int(request, "filter.timestamp.gte", None, errors)
    lte = _int(request, "filter.timestamp.lte", None, errors)
    if errors:
        raise ValidationFailed(errors)
    out = []
    for m in messages:
        if chat_id != "all" and chat_of(m) != chat_id:
            continue
        if gte is not None and m["timestamp"] < gte:
            continue
        if lte is not None and m["timestamp"] > lte:
            continue
        if q.get("filter.fromMe") not in (None, "") and m["fromMe"] != query_bool(q.get("filter.fromMe")):
            continue
        if q.get("filter.ack") and m["ackName"] != q.get("filter.ack"):
            continue
        out.append(dict(m))
    return out


@router.get("/api/{session}/chats/{chat_id}/messages")
async def chat_messages(request: Request, session: str, chat_id: str) -> JSONResponse:
    errors: list[str] = []
    limit = _int(request, "limit", 10, errors)
    offset = _int(request, "offset", 0, errors) or 0
    if errors:
        raise ValidationFailed(errors)
    s = await emulator(request).sessions.working(session)
    chat_id = chat_id if chat_id == "all" else ensure_suffix(chat_id)
    # Newest first unless asked otherwise.
    items = _filtered(request, s.messages, chat_id)
    sort_order = request.query_params.get("sortOrder") or "desc"
    return ok(sort_page(items, "timestamp", sort_order, limit, offset))


@router.get("/api/{session}/chats/{chat_id}/messages/{message_id}")
async def chat_message(request: Request, session: str, chat_id: str, message_id: str) -> JSONResponse:
    s = await emulator(request).sessions.working(session)
    for m in reversed(s.messages):
        if m["id"] == message_id or m["id"].split("_")[2:3] == [message_id]:
            return ok(dict(m))
    raise NotFound("Message not found")
