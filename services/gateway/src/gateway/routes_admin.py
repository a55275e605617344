"""`/api/v1/admin/*`: operators inspect sessions. Admin tokens only (403 otherwise).

Like every call, each read is one RabbitMQ round trip to the orchestrator, which owns the registry:
one user's record on `user.<id>.session.admin_get`, fleet-wide reads on `system.admin.sessions.*`.
Admin reads never count as the inspected user's activity.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import TypeAdapter, ValidationError

from fleet_shared.contracts.admin import (
    MAX_ADMIN_LIST,
    AdminCountSessions,
    AdminGetSession,
    AdminListSessions,
    AdminSessionCount,
    AdminSessionItem,
    AdminSessionRecord,
)
from fleet_shared.contracts.events import SessionStatus
from fleet_shared.http import ApiError
from fleet_shared.ids import USER_ID_RE
from fleet_shared.routing import admin_key

from .auth import AdminUser, admin_principal
from .bus import Bus
from .schemas import error_responses

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_principal)],
    responses=error_responses(401, 403, 503, 504),
)


def _bus(request: Request) -> Bus:
    return request.app.state.bus


@router.get(
    "/sessions",
    response_model=list[AdminSessionItem],
    summary="Sessions, ordered by user id (by default the running ones)",
)
async def list_sessions(
    request: Request,
    admin: AdminUser,
    status: Annotated[SessionStatus | None, Query(description="only sessions in this status")] = None,
    every: Annotated[bool, Query(alias="all", description="every user the registry knows, STOPPED ones too")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_ADMIN_LIST)] = 1000,
) -> Any:
    query = AdminListSessions(status=status, all=every, limit=limit)
    data = await _bus(request).ask(admin.user_id, query, routing_key=admin_key(query.TYPE))
    return _validated(list[AdminSessionItem], data, query.TYPE)


@router.get("/sessions/count", response_model=AdminSessionCount, summary="How many sessions, by status")
async def count_sessions(request: Request, admin: AdminUser) -> Any:
    query = AdminCountSessions()
    data = await _bus(request).ask(admin.user_id, query, routing_key=admin_key(query.TYPE))
    return _validated(AdminSessionCount, data, query.TYPE)


@router.get(
    "/sessions/{userId}",
    response_model=AdminSessionRecord,
    summary="One user's session record",
    responses=error_responses(404),
)
async def get_session(
    request: Request,
    admin: AdminUser,
    userId: Annotated[str, Path(pattern=USER_ID_RE.pattern)],  # noqa: N803
) -> Any:
    # The inspected user is the routing key's: the orchestrator answers from that user's record only.
    return await _bus(request).ask_for(AdminSessionRecord, userId, AdminGetSession())


def _validated(model: Any, data: Any, message_type: str) -> Any:
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise ApiError(502, "bad_reply", f"malformed answer to {message_type}") from exc
