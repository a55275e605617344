"""Health, version and the file route (only there so ?x-api-key= on /api/files/* can be used)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import emulator, ok

router = APIRouter()


@router.get("/ping")
async def ping() -> JSONResponse:
    return ok({"message": "pong"})


@router.get("/health")
async def health() -> JSONResponse:
    return ok({"status": "ok", "info": {}, "error": {}, "details": {}})


@router.get("/api/server/version")
async def server_version(request: Request) -> JSONResponse:
    return ok(emulator(request).environment)


@router.get("/api/files/{path:path}")
async def files(path: str) -> JSONResponse:
    # The emulator never stores media.
    return JSONResponse({"error": {"code": 404, "key": "FILE_NOT_FOUND", "message": "File not found",
                                   "details": {"file": path}}}, status_code=404)
