"""`POST /api/v1/events/ticket`: a single-use ticket that opens the live-events WebSocket (`tickets.py`)."""

from fastapi import APIRouter, Request

from .auth import CurrentUser
from .schemas import EventsTicket, error_responses
from .tickets import TicketIssuer

router = APIRouter(prefix="/api/v1", tags=["events"], responses=error_responses(401))


@router.post(
    "/events/ticket",
    status_code=201,
    response_model=EventsTicket,
    summary="A ticket to open the live-events WebSocket without a token in its URL",
    description="Browsers cannot send `Authorization` on a WebSocket; a URL with the token in it ends up in "
    "logs. Ask for a ticket with the token, then open `/api/v1/events?ticket=<ticket>` within `expiresIn` "
    "seconds. A ticket opens one socket, once; the socket closes when the token would have expired.",
)
async def events_ticket(request: Request, user: CurrentUser) -> EventsTicket:
    issuer: TicketIssuer = request.app.state.tickets
    return EventsTicket(ticket=issuer.issue(user), expiresIn=int(issuer.lifetime))
