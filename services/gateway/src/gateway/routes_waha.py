"""`/api/v1/waha/*`: the caller's own session, QR, messages and chats, each one RabbitMQ round trip."""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from fleet_shared.contracts import Contract, deterministic_id
from fleet_shared.contracts.commands import (
    GetQr,
    GetSession,
    ListChats,
    ListContacts,
    ListGroups,
    ListMessages,
    LogoutSession,
    Page,
    QrView,
    RestartSession,
    SendText,
    SentView,
    SessionView,
    StartSession,
    StopSession,
)
from fleet_shared.http import ApiError

from .auth import CurrentUser
from .bus import Bus
from .schemas import (
    IDEMPOTENCY_KEY_RE,
    MessagesQuery,
    PageQuery,
    QrQuery,
    SendMessageBody,
    error_responses,
)

router = APIRouter(
    prefix="/api/v1/waha",
    tags=["waha"],
    responses=error_responses(401, 422, 503, 504),
)

_ACTIONS = {
    "start": StartSession,
    "stop": StopSession,
    "restart": RestartSession,
    "logout": LogoutSession,
}


def _bus(request: Request) -> Bus:
    return request.app.state.bus


@router.get("/status", response_model=SessionView, summary="The caller's session and its status")
async def status(request: Request, user: CurrentUser) -> Any:
    return await _bus(request).ask_for(SessionView, user.user_id, GetSession())


@router.get(
    "/qr",
    response_model=QrView,
    summary="Start the session if needed and answer its QR",
    responses={200: {"content": {"image/png": {}}}, **error_responses(409)},
)
async def qr(request: Request, user: CurrentUser, query: Annotated[QrQuery, Query()]) -> Any:
    view = await _bus(request).ask_for(QrView, user.user_id, GetQr())
    if query.format == "json":
        return view
    if view.qr is None or view.status == "WORKING":
        raise ApiError(409, "no_qr", f"no QR to scan: the session is {view.status}")
    try:
        png = base64.b64decode(str(view.qr.get("data") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(502, "bad_reply", "the QR image is not valid base64") from exc
    if not png:
        raise ApiError(502, "bad_reply", "the QR has no image")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _session_action(action: str, command: type[Contract]) -> None:
    async def endpoint(request: Request, user: CurrentUser) -> dict[str, Any]:
        data = await _bus(request).ask(user.user_id, command())
        if not isinstance(data, dict) or "status" not in data:
            raise ApiError(502, "bad_reply", f"malformed answer to {command.TYPE}")
        return data

    router.add_api_route(
        f"/session/{action}",
        endpoint,
        methods=["POST"],
        status_code=202,
        name=f"session_{action}",
        summary=f"{action.capitalize()} the caller's session",
        responses=error_responses(409, 429),
    )


for _action, _command in _ACTIONS.items():
    _session_action(_action, _command)


@router.post(
    "/messages",
    status_code=201,
    response_model=SentView,
    summary="Send a text message",
    responses=error_responses(409),
)
async def send_message(
    request: Request,
    user: CurrentUser,
    body: SendMessageBody,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=128,
            pattern=IDEMPOTENCY_KEY_RE.pattern,
            description="same key, same result, one WhatsApp message",
        ),
    ] = None,
) -> Any:
    command = SendText(chat_id=body.chatId, text=body.text, reply_to=body.replyTo, idempotency_key=idempotency_key)
    # A retried send with the same key carries the same envelope id, so it is recognisable on the bus.
    envelope_id = deterministic_id(user.user_id, "message.send", idempotency_key) if idempotency_key else None
    return await _bus(request).ask_for(SentView, user.user_id, command, envelope_id=envelope_id)


@router.get("/chats", response_model=Page, summary="The caller's chats, newest first")
async def chats(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return await _bus(request).ask_for(Page, user.user_id, ListChats(limit=query.limit, cursor=query.cursor))


@router.get("/groups", response_model=Page, summary="The caller's group chats")
async def groups(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return await _bus(request).ask_for(Page, user.user_id, ListGroups(limit=query.limit, cursor=query.cursor))


@router.get("/contacts", response_model=Page, summary="The caller's one-to-one chats")
async def contacts(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return await _bus(request).ask_for(Page, user.user_id, ListContacts(limit=query.limit, cursor=query.cursor))


@router.get("/messages", response_model=Page, summary="Messages of one of the caller's chats, newest first")
async def messages(request: Request, user: CurrentUser, query: Annotated[MessagesQuery, Query()]) -> Any:
    page_query = ListMessages(chat_id=query.chatId, limit=query.limit, before=query.before)
    return await _bus(request).ask_for(Page, user.user_id, page_query)
