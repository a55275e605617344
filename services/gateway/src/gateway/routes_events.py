"""`/api/v1/events`: the caller's events as they happen, over a WebSocket (see docs/api.md).

The token is checked after the handshake, so a refused client learns why from the close frame
(code 1008, reason `invalid_token: ...`) instead of a bare failed handshake. Frames go one way:
each is one JSON envelope; text the client sends is read and ignored.
"""

import asyncio
import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter
from starlette.websockets import WebSocketState

from fleet_shared.contracts import envelope_union
from fleet_shared.contracts.events import PUBLIC_EVENT_TYPES
from fleet_shared.contracts.examples import EVENT_EXAMPLES, example_envelope
from fleet_shared.http import ApiError
from fleet_shared.subscribe import SubscriptionLost

from .auth import Principal, TokenVerifier, principal_from_header
from .live import (
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TRY_AGAIN_LATER,
    Closing,
    LiveHub,
    LiveRefused,
    LiveStream,
)
from .metrics import LIVE_CLOSED, LIVE_FRAMES
from .schemas import error_responses
from .tickets import TicketIssuer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["events"])

# How long closing may wait for a client that does not read (its close frame queues behind the rest).
CLOSE_TIMEOUT = 5.0
MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes

LiveEvent = envelope_union(PUBLIC_EVENT_TYPES.values())
_FRAME_SCHEMA = TypeAdapter(LiveEvent).json_schema(ref_template="#/components/schemas/{model}")
# The envelope models a frame may hold, for the OpenAPI document's components (`install_openapi`).
COMPONENT_SCHEMAS: dict = _FRAME_SCHEMA.pop("$defs")

DESCRIPTION = f"""
Open a **WebSocket** here (`ws://…/api/v1/events`, `wss://` behind TLS) to receive the caller's own
events as they happen. A plain HTTP GET answers 426.

**Authentication**: `Authorization: Bearer <JWT>`; where headers cannot be set (browsers),
`?ticket=<ticket>` from `POST /api/v1/events/ticket` (single use, 30 s), or `?token=<JWT>`
(discouraged: a URL may be logged by whatever sits in between). The socket is bound to the
token's user and closes when the token expires.

**Frames**: server to client only, one JSON envelope per text frame
(`{{"id", "type", "version", "occurredAt", "userId", "session", "correlationId", "data"}}`), of the types
{", ".join(f"`{t}`" for t in PUBLIC_EVENT_TYPES)}. `id` is the same for a redelivered fact: use it to drop
duplicates. Internal events (`session.status_reported`, `session.active`) are never sent.

**Close codes**

| code | reason | what to do |
|---|---|---|
| 1008 | `unauthorized`, `invalid_token`, `token_expired`, `too_many_connections` | get a (new) token; close other sockets |
| 1013 | `broker_unavailable`, `server_busy` | reconnect with backoff, then re-read what you missed |
| {CLOSE_SLOW_CONSUMER} | `slow_consumer` | read faster; reconnect and re-read what you missed |
| 1012 | (gateway restarting) | reconnect |

Nothing is replayed on reconnect: after any close, re-read `GET /api/v1/waha/chats` and
`/messages` for what happened meanwhile.
"""


@router.get(
    "/events",
    status_code=426,
    response_description="Upgrade Required: this path speaks WebSocket only",
    summary="The caller's live events (WebSocket)",
    description=DESCRIPTION,
    responses={
        101: {
            "description": "Switching Protocols: the WebSocket is open; each text frame is one event envelope.",
            "content": {
                "application/json": {
                    "schema": _FRAME_SCHEMA,
                    "examples": {t: {"summary": t, "value": example_envelope(e)} for t, e in EVENT_EXAMPLES.items() if t in PUBLIC_EVENT_TYPES}
                }
            },
        },
        **error_responses(426),
    },
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
async def events_without_upgrade(
    ticket: Annotated[str | None, Query(description="a ticket from `POST /api/v1/events/ticket` (browsers)")] = None,
    token: Annotated[str | None, Query(description="the JWT, where no header can be sent (prefer a ticket)")] = None,
) -> None:
    raise ApiError(426, "upgrade_required", "connect with a WebSocket (Upgrade: websocket)", {"Upgrade": "websocket"})


@router.websocket("/events")
async def events(websocket: WebSocket) -> None:
    hub: LiveHub = websocket.app.state.live
    try:
        principal = _principal(websocket)
        async with hub.stream(principal.user_id) as stream:
            # Accepted once the socket's queue is bound: every event published after the client saw
            # the socket open reaches it (a client catching up at `open` misses nothing in between).
            await websocket.accept()
            closing = await _pump(websocket, stream, principal)
    except ApiError as exc:
        closing = Closing(CLOSE_POLICY, exc.code, exc.message)
    except LiveRefused as exc:
        closing = exc.closing
    LIVE_CLOSED.labels(closing.reason if closing else "client_closed").inc()
    if closing is not None:
        if websocket.application_state == WebSocketState.CONNECTING:
            await websocket.accept()  # a refusal is said in the close frame, which browsers show, not as a 403
        await _close(websocket, closing)


def _principal(websocket: WebSocket) -> Principal:
    verifier: TokenVerifier = websocket.app.state.token_verifier
    header = websocket.headers.get("authorization")
    if header is not None:
        return principal_from_header(verifier, header)
    if ticket := websocket.query_params.get("ticket"):
        tickets: TicketIssuer = websocket.app.state.tickets
        return tickets.redeem(ticket)
    token = websocket.query_params.get("token", "")
    if not token:
        raise ApiError(401, "unauthorized", "missing token: send 'Authorization: Bearer <token>', ?ticket= or ?token=")
    return verifier.verify(token.strip())


async def _pump(websocket: WebSocket, stream: LiveStream, principal: Principal) -> Closing | None:
    """Forward events until something ends the socket; what it was decides the close code (None: the client left)."""
    forward = asyncio.create_task(_forward(websocket, stream))
    left = asyncio.create_task(_until_client_leaves(websocket))
    lost = asyncio.create_task(stream.subscription.wait())
    overflow = asyncio.create_task(stream.overflowed.wait())
    waits = [forward, left, lost, overflow]
    if principal.expires_at is not None:
        expiry = asyncio.create_task(asyncio.sleep(max(0.0, principal.expires_at - time.time())))
        waits.append(expiry)
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.wait(waits)
    if left in done or (forward in done and isinstance(forward.exception(), WebSocketDisconnect)):
        return None
    if forward in done:
        forward.result()  # anything but the client leaving is a bug: let it surface
    if lost in done:
        if not isinstance(lost.exception(), SubscriptionLost):
            lost.result()
        return Closing(CLOSE_TRY_AGAIN_LATER, "broker_unavailable", "lost the message broker; reconnect later")
    if overflow in done:
        log.info("live events for %s: client too slow, closing", stream.user_id)
        return Closing(CLOSE_SLOW_CONSUMER, "slow_consumer", "too many events were waiting for this socket")
    return Closing(CLOSE_POLICY, "token_expired", "the token has expired")


async def _forward(websocket: WebSocket, stream: LiveStream) -> None:
    while True:
        env = await stream.next()
        await websocket.send_text(json.dumps(env.wire(), separators=(",", ":")))
        LIVE_FRAMES.inc()


async def _until_client_leaves(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, closing: Closing) -> None:
    reason = f"{closing.reason}: {closing.message}".encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await websocket.close(closing.code, reason)
    except TimeoutError:
        log.info("live events: the client did not take the close frame in time")
    except WebSocketDisconnect:
        pass  # it left first
