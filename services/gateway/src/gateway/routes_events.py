"""`/api/v1/events`: the caller's event stream: pages of stored events (`GET ?after=<seq>`), or the
events as they happen over a WebSocket, from `?after=<seq>` on (see docs/api.md, `catchup.py`).

The token is checked after the handshake, so a refused client learns why from the close frame
(code 1008, reason `invalid_token: ...`) instead of a bare failed handshake. Frames go one way:
each is one JSON envelope with its `seq`; text the client sends is read and ignored.
"""

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter
from starlette.websockets import WebSocketState

from fleet_shared.contracts.events import PUBLIC_EVENT_TYPES
from fleet_shared.contracts.examples import EVENT_EXAMPLES, example_envelope
from fleet_shared.contracts.stream import MAX_EVENT_PAGE, EventPage, ListEvents, stored_event_union
from fleet_shared.http import ApiError
from fleet_shared.subscribe import SubscriptionLost

from .auth import CurrentUser, Principal, TokenVerifier, principal_from_header
from .bus import Bus
from .catchup import Sequencer, frame, stream_head
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

LiveEvent = stored_event_union(PUBLIC_EVENT_TYPES.values())
_FRAME_SCHEMA = TypeAdapter(LiveEvent).json_schema(ref_template="#/components/schemas/{model}")
# The envelope models a frame may hold, for the OpenAPI document's components (`install_openapi`).
COMPONENT_SCHEMAS: dict = _FRAME_SCHEMA.pop("$defs")

DESCRIPTION = f"""
The caller's **event stream**: every event of their account, numbered `seq` = 1, 2, 3, … (per user,
in the order they were stored, never renumbered, without holes but where events older than
`EVENT_RETENTION`, 7 days by default, are gone).

**A plain GET** answers a page of stored events with `seq` > `after`, oldest first:
`{{"items": [<envelope + seq>, …], "next": <seq>, "last": <seq>}}`; pass `next` back as `after` (an
empty page answers `next` = `after`: nothing new yet). `last` is the newest `seq` of your stream
when the page was read (`next` < `last`: more to read). At most `limit` items and about PAGE_MAX_BYTES.

**A WebSocket** here (`ws://…/api/v1/events`, `wss://` behind TLS) receives them as they happen.
With `?after=<seq>` it first sends every stored event after that `seq`, then the live ones, with
no gap and no duplicate at the seam: remember the last `seq` you handled and reconnect with it.
Without `after` it starts at the stream's newest `seq` when the socket opened: every event after
that one, in order.

**Authentication**: `Authorization: Bearer <JWT>`; where headers cannot be set (browsers),
`?ticket=<ticket>` from `POST /api/v1/events/ticket` (single use, 30 s), or `?token=<JWT>`
(discouraged: a URL may be logged by whatever sits in between). The socket is bound to the
token's user and closes when the token expires.

**Frames**: server to client only, one JSON envelope per text frame
(`{{"id", "type", "version", "occurredAt", "userId", "session", "correlationId", "data", "seq"}}`), of the types
{", ".join(f"`{t}`" for t in PUBLIC_EVENT_TYPES)}, in `seq` order, each `seq` once. `id` names the
fact (the same fact is never numbered twice). Internal events (`session.status_reported`, `session.active`) are never sent.

**Close codes**

| code | reason | what to do |
|---|---|---|
| 1008 | `unauthorized`, `invalid_token`, `token_expired`, `too_many_connections`, `invalid_after` | get a (new) token; close other sockets; fix `after` |
| 1013 | `broker_unavailable`, `server_busy`, `storage_unavailable`, `timeout` | reconnect with backoff and `?after=<last seq>` |
| {CLOSE_SLOW_CONSUMER} | `slow_consumer` | read faster; reconnect with `?after=<last seq>` |
| 1012 | (gateway restarting) | reconnect with `?after=<last seq>` |
"""


_STREAMED_EXAMPLES = [e for t, e in EVENT_EXAMPLES.items() if t in PUBLIC_EVENT_TYPES]
_PAGE_EXAMPLE = {
    "items": [{**example_envelope(e), "seq": 41 + n} for n, e in enumerate(_STREAMED_EXAMPLES[:2])],
    "next": 42,
    "last": 42,
}


@router.get(
    "/events",
    response_model=EventPage,
    summary="The caller's stored events after a seq (GET), or live from a seq on (WebSocket)",
    description=DESCRIPTION,
    responses={
        **error_responses(400, 401, 422, 503, 504),
        200: {"content": {"application/json": {"example": _PAGE_EXAMPLE}}},
        101: {
            "description": "Switching Protocols: the WebSocket is open; each text frame is one event envelope.",
            "content": {
                "application/json": {
                    "schema": _FRAME_SCHEMA,
                    "examples": {
                        t: {"summary": t, "value": {**example_envelope(e), "seq": 42}}
                        for t, e in EVENT_EXAMPLES.items() if t in PUBLIC_EVENT_TYPES
                    }
                }
            },
        },
    },
)
async def stored_events(
    request: Request,
    user: CurrentUser,
    after: Annotated[int, Query(ge=0, description="the last `seq` you have (0: from the oldest kept)")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = 100,
) -> Any:
    bus: Bus = request.app.state.bus
    return await bus.ask_for(EventPage, user.user_id, ListEvents(after=after, limit=limit))


@router.websocket("/events")
async def events(websocket: WebSocket) -> None:
    hub: LiveHub = websocket.app.state.live
    try:
        principal = _principal(websocket)
        after = _after(websocket)
        async with hub.stream(principal.user_id) as stream:
            bus: Bus = websocket.app.state.bus
            start = after if after is not None else await _head(bus, principal.user_id)
            # Accepted once the socket's queue is bound: every event published after the client saw
            # the socket open reaches it (a client catching up at `open` misses nothing in between).
            await websocket.accept()
            sequencer = Sequencer(bus, principal.user_id, _sender(websocket), start)
            closing = await _pump(websocket, stream, principal, sequencer)
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


def _after(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "invalid_after", "after must be a seq: a whole number, 0 or more")
    return int(raw)


async def _head(bus: Bus, user_id: str) -> int:
    try:
        return await stream_head(bus, user_id)
    except ApiError as exc:  # the store could not answer
        raise LiveRefused(Closing(CLOSE_TRY_AGAIN_LATER, exc.code, exc.message)) from exc


def _sender(websocket: WebSocket):
    async def send(event: dict[str, Any]) -> None:
        await websocket.send_text(frame(event))
        LIVE_FRAMES.inc()

    return send


async def _pump(websocket: WebSocket, stream: LiveStream, principal: Principal, sequencer: Sequencer) -> Closing | None:
    """Forward events until something ends the socket; what it was decides the close code (None: the client left)."""
    forward = asyncio.create_task(_forward(stream, sequencer))
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
        if isinstance(forward.exception(), ApiError):  # the store could not answer the catch-up
            failed: ApiError = forward.exception()  # type: ignore[assignment]
            return Closing(CLOSE_TRY_AGAIN_LATER, failed.code, failed.message)
        forward.result()  # anything but the client leaving is a bug: let it surface
    if lost in done:
        if not isinstance(lost.exception(), SubscriptionLost):
            lost.result()
        return Closing(CLOSE_TRY_AGAIN_LATER, "broker_unavailable", "lost the message broker; reconnect later")
    if overflow in done:
        log.info("live events for %s: client too slow, closing", stream.user_id)
        return Closing(CLOSE_SLOW_CONSUMER, "slow_consumer", "too many events were waiting for this socket")
    return Closing(CLOSE_POLICY, "token_expired", "the token has expired")


async def _forward(stream: LiveStream, sequencer: Sequencer) -> None:
    # The live queue is bound (and buffering) already: what is stored after `after` goes first.
    await sequencer.catch_up()
    while True:
        await sequencer.live((await stream.next()).wire())


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
