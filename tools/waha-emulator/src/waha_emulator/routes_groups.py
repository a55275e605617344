"""GET /api/{session}/groups*: the account's groups in NOWEB's shapes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import emulator, ok, query_choice, query_int
from .errors import EngineError, ValidationFailed
from .groups import Group
from .messages import sort_page
from .state import Session

router = APIRouter(prefix="/api/{session}/groups")


def _group(s: Session, group_id: str) -> Group:
    group = s.groups.get(group_id if "@" in group_id else f"{group_id}@g.us")
    if group is None:
        raise EngineError(f"Group with id '{group_id}' not found")  # NOWEB's getGroup throws a plain Error
    return group


@router.get("")
async def list_groups(request: Request, session: str) -> JSONResponse:
    """NOWEB answers an object keyed by group id (kept "for backward compatibility")."""
    errors: list[str] = []
    limit = query_int(request, "limit", None, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    sort_by = query_choice(request, "sortBy", ("id", "subject"), None, errors)
    order = query_choice(request, "sortOrder", ("desc", "asc"), "asc", errors)
    exclude = request.query_params.getlist("exclude")
    if any(e != "participants" for e in exclude):
        errors.append("each value in exclude must be one of the following values: participants")
    if errors:
        raise ValidationFailed(errors)
    s = await emulator(request).sessions.working(session)
    key = (lambda g: g.id) if sort_by == "id" else (lambda g: g.subject) if sort_by == "subject" else None
    page = sort_page(list(s.groups.values()), key, order == "desc", limit, offset)
    return ok({g.id: g.metadata(exclude_participants=bool(exclude)) for g in page})


@router.get("/count")
async def count_groups(request: Request, session: str) -> JSONResponse:
    s = await emulator(request).sessions.working(session)
    return ok({"count": len(s.groups)})


@router.get("/{group_id}")
async def get_group(request: Request, session: str, group_id: str) -> JSONResponse:
    s = await emulator(request).sessions.working(session)
    return ok(_group(s, group_id).metadata())


@router.get("/{group_id}/participants/v2")
async def group_participants(request: Request, session: str, group_id: str) -> JSONResponse:
    s = await emulator(request).sessions.working(session)
    return ok([m.v2() for m in _group(s, group_id).members])


@router.get("/{group_id}/picture")
async def group_picture(request: Request, session: str, group_id: str) -> JSONResponse:
    s = await emulator(request).sessions.working(session)
    group = s.groups.get(group_id if "@" in group_id else f"{group_id}@g.us")
    return ok({"url": group.picture if group else None})
