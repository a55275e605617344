"""Health and version."""

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

