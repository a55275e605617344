"""/api/{session}/auth: the pairing QR (PNG, base64 JSON or raw value) and pairing codes."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request, Response

from .deps import created, emulator, field_errors, json_body, note_session, object_body, ok
from .errors import NotFound, ValidationFailed
from .pairing import request_code
from .qr import qr_png
from .state import Status

router = APIRouter()


@router.get("/api/{session}/auth/qr")
async def get_qr(request: Request, session: str) -> Response:
    note_session(request, session)
    fmt = request.query_params.get("format") or "image"
    if fmt not in ("image", "raw"):
        raise ValidationFailed(["format must be one of the following values: image, raw"])
    emu = emulator(request)
    manager = emu.sessions
    manager.require(session)
    s = await manager.session_in(session, [Status.SCAN_QR_CODE], emu.config.qr_wait_timeout,
                                 missing=lambda _name: NotFound())
    value = s.qr_value or ""
    if fmt == "raw":
        return ok({"value": value})
    png = qr_png(value)
    # Only this exact Accept value switches to JSON (BufferResponseInterceptor in WAHA).
    if request.headers.get("accept") == "application/json":
        return ok({"mimetype": "image/png", "data": base64.b64encode(png).decode()})
    return Response(png, media_type="image/png")


@router.post("/api/{session}/auth/request-code")
async def post_request_code(request: Request, session: str) -> Response:
    note_session(request, session)
    body = object_body(await json_body(request, {}))
    errors = field_errors(body, ("phoneNumber",), ("method",))
    if errors:
        raise ValidationFailed(errors)
    phone = body["phoneNumber"].strip().removeprefix("+").split("@")[0]
    emu = emulator(request)
    return created(await request_code(emu.sessions, session, phone, body.get("method"), emu.config.qr_wait_timeout))
