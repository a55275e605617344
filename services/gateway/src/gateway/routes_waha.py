"""`/api/v1/waha/*`: the caller's own session, QR, messages and chats, each one RabbitMQ round trip."""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from fleet_shared.contracts import Contract
from fleet_shared.contracts.commands import (
    GetQr,
    HistoryImportView,
    ImportHistory,
    ListChats,
    ListContacts,
    ListGroups,
    ListMessages,
    LogoutSession,
    PairingCodeView,
    QrView,
    RequestPairingCode,
    RestartSession,
    SessionView,
    StartSession,
    StopSession,
)
from fleet_shared.contracts.pages import ChatPage, MessagePage
from fleet_shared.http import ApiError

from .auth import CurrentUser
from .bus import Bus
from .schemas import (
    MessagesQuery,
    PageQuery,
    PairingCodeBody,
    QrQuery,
    SessionStatusView,
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


def _json(model: Contract) -> Response:
    """A validated reply as the API answers it, encoded once: FastAPI would validate and encode the
    returned model again against `response_model` (which stays, for the documentation)."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/status", response_model=SessionView, summary="The caller's session and its status")
async def status(request: Request, user: CurrentUser) -> Any:
    # Served by `status_route.StatusEndpoint` ahead of FastAPI; this route documents it (and answers
    # only what does not take that way). Encoded once per change (`status_cache`), so answered as it is rather than through `response_model`.
    return Response(await _bus(request).status(user.user_id), media_type="application/json")


@router.get(
    "/qr",
    response_model=QrView,
    summary="Start the session if needed and answer its QR",
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(409, 429, 502, codes={409: ("no_qr", "no QR to scan: the session is WORKING")}),
    },
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


@router.post(
    "/pairing-code",
    response_model=PairingCodeView,
    summary="Pair by phone number: a code to type on the phone instead of scanning the QR",
    description="On the phone: WhatsApp → Linked devices → Link a device → *Link with phone number instead*, "
    "then type the code. Only while the session asks for a QR (start it first: `GET /qr` or "
    "`POST /session/start`); the session becomes WORKING once the phone took the code.",
    responses=error_responses(
        404, 409, 502,
        codes={
            404: ("session_not_found", "no session yet: start it first (POST /session/start)"),
            409: ("already_paired", "the session is WORKING: a phone is linked already"),
        },
    ),
)
async def pairing_code(request: Request, user: CurrentUser, body: PairingCodeBody) -> Any:
    return await _bus(request).ask_for(PairingCodeView, user.user_id, RequestPairingCode(phone_number=body.phoneNumber))


@router.post(
    "/history/import",
    status_code=202,
    response_model=HistoryImportView,
    summary="Import the chats and newest messages WhatsApp synced (again)",
    description="Runs in the background (it also runs by itself after a new pairing); follow it in "
    "`GET /status` → `historyImport`. Imported messages are stored once, whichever way they come; they are "
    "not pushed on the live WebSocket. An import already running goes on (answered as it is).",
    responses=error_responses(409, codes={409: ("session_not_working", "the session is SCAN_QR_CODE, not WORKING")}),
)
async def history_import(request: Request, user: CurrentUser) -> Any:
    return await _bus(request).ask_for(HistoryImportView, user.user_id, ImportHistory())


def _session_action(action: str, command: type[Contract]) -> None:
    async def endpoint(request: Request, user: CurrentUser) -> Any:
        return await _bus(request).ask_for(SessionStatusView, user.user_id, command())

    router.add_api_route(
        f"/session/{action}",
        endpoint,
        methods=["POST"],
        status_code=202,
        response_model=SessionStatusView,
        name=f"session_{action}",
        summary=f"{action.capitalize()} the caller's session",
        responses=error_responses(
            404, 429, 502, codes={404: ("session_not_found", "WAHA has no session wf_alice")}
        ),
    )


for _action, _command in _ACTIONS.items():
    _session_action(_action, _command)


_PAGED: dict[str, Any] = {
    "responses": error_responses(400, 502),
    "description": "Newest first (by the last message's time, then id). Pass `nextCursor` back as `cursor` for "
    "the next page; it is null on the last one. Pages are keyset pages: chats that get a new message while "
    "you page move to the top (re-read the first page to see them) and are never repeated.",
}


@router.get("/chats", response_model=ChatPage, summary="The caller's chats, newest first", **_PAGED)
async def chats(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return _json(await _bus(request).ask_for(ChatPage, user.user_id, ListChats(limit=query.limit, cursor=query.cursor)))


@router.get("/groups", response_model=ChatPage, summary="The caller's group chats, newest first", **_PAGED)
async def groups(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return _json(await _bus(request).ask_for(ChatPage, user.user_id, ListGroups(limit=query.limit, cursor=query.cursor)))


@router.get("/contacts", response_model=ChatPage, summary="The caller's one-to-one chats, newest first", **_PAGED)
async def contacts(request: Request, user: CurrentUser, query: Annotated[PageQuery, Query()]) -> Any:
    return _json(await _bus(request).ask_for(ChatPage, user.user_id, ListContacts(limit=query.limit, cursor=query.cursor)))


@router.get(
    "/messages",
    response_model=MessagePage,
    summary="Messages of one of the caller's chats, newest first",
    description="Newest first (by WhatsApp timestamp, then id). Pass `nextCursor` back as `before` for the next "
    "(older) page; it is null on the last one. Messages arriving while you page are newer than your cursor, so "
    "later pages neither repeat nor skip any.",
    responses=error_responses(400, 502),
)
async def messages(request: Request, user: CurrentUser, query: Annotated[MessagesQuery, Query()]) -> Any:
    page_query = ListMessages(chat_id=query.chatId, limit=query.limit, before=query.before)
    return _json(await _bus(request).ask_for(MessagePage, user.user_id, page_query))
