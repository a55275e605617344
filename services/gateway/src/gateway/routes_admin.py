"""`/api/v1/admin/*`: operators inspect sessions. Admin tokens only; the answers are not built yet."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from fleet_shared.http import ApiError
from fleet_shared.ids import USER_ID_RE

from .auth import admin_principal
from .schemas import error_responses

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_principal)],
    responses=error_responses(401, 403, 501),
)


def _not_implemented() -> ApiError:
    return ApiError(501, "not_implemented", "admin endpoints are not implemented yet")


@router.get("/sessions", summary="Every user's session")
async def list_sessions() -> list[dict]:
    raise _not_implemented()


@router.get("/sessions/count", summary="How many sessions, by status")
async def count_sessions() -> dict:
    raise _not_implemented()


@router.get("/sessions/{userId}", summary="One user's session record")
async def get_session(userId: Annotated[str, Path(pattern=USER_ID_RE.pattern)]) -> dict:  # noqa: N803
    raise _not_implemented()
