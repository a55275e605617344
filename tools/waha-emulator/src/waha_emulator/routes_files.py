"""GET /api/files/{session}/{messageId}.{ext}: downloaded media, until WHATSAPP_FILES_LIFETIME runs out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .deps import emulator, note_session
from .media import base_mimetype

router = APIRouter()


@router.get("/api/files/{path:path}")
async def files(request: Request, path: str) -> Response:
    note_session(request, path.split("/", 1)[0])
    media = emulator(request).files.get(path)
    if media is None:
        return JSONResponse({"error": {"code": 404, "key": "FILE_NOT_FOUND", "message": "File not found",
                                       "details": {"file": path}}}, status_code=404)
    # Served like express.static: the type comes from the extension, i.e. the mimetype without parameters.
    return Response(media.content(), media_type=base_mimetype(media.mimetype))
