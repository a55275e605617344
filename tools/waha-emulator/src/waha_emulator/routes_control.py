"""/_emulator/*: the control API WAHA does not have (no key): act as the phone, faults, introspection."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import conflict, control_session, created, emulator, json_body, object_body, ok
from .errors import ValidationFailed
from .faults import parse_faults
from .state import StateConflict

router = APIRouter(prefix="/_emulator")

PHONE_RE = re.compile(r"^\d{5,20}$")


@router.post("/sessions/{name}/scan")
async def scan(request: Request, name: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    control_session(request, name)
    phone = body.get("phone")
    if phone is not None:
        if not isinstance(phone, str):
            raise ValidationFailed(["phone must be a string of digits"])
        phone = phone.strip().removeprefix("+").removesuffix("@c.us")
        if not PHONE_RE.match(phone):
            raise ValidationFailed(["phone must be a string of digits"])
    push_name = body.get("pushName")
    if push_name is not None and not isinstance(push_name, str):
        raise ValidationFailed(["pushName must be a string"])
    emu = emulator(request)
    try:
        s = emu.sessions.scan(name, phone, push_name)
    except StateConflict as exc:
        return conflict(exc)
    return created(s.info(emu.config.engine))


@router.post("/sessions/{name}/ack")
async def ack(request: Request, name: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    value = body.get("ack")
    if not isinstance(body.get("id"), str) or isinstance(value, bool) or value not in (-1, 0, 1, 2, 3, 4):
        raise ValidationFailed(["id must be a string and ack one of -1, 0, 1, 2, 3, 4"])
    return created(emulator(request).messaging.set_ack(s, body["id"], value))


@router.post("/sessions/{name}/disconnect")
async def disconnect(request: Request, name: str) -> JSONResponse:
    control_session(request, name)
    emu = emulator(request)
    return created(emu.sessions.disconnect(name).info(emu.config.engine))


@router.get("/sessions/{name}/sent")
async def sent(request: Request, name: str) -> JSONResponse:
    return ok(emulator(request).messaging.sent_view(control_session(request, name)))


@router.get("/sessions/{name}/actions")
async def actions(request: Request, name: str) -> JSONResponse:
    """The user's actions other than sends (reactions, edits, deletes, reads, typing, presence), oldest first."""
    wanted = request.query_params.get("action")
    return ok([a for a in control_session(request, name).actions if not wanted or a["action"] == wanted])


@router.get("/sessions/{name}")
async def inspect(request: Request, name: str) -> JSONResponse:
    s = control_session(request, name)
    return ok({
        "name": s.name,
        "status": str(s.status),
        "linked": s.linked,
        "me": s.linked_me,
        "qr": {"value": s.qr_value, "index": s.qr_index} if s.qr_value else None,
        "history": s.history,
        "messages": s.store.size,
        "sent": len(s.sent),
        "store": s.store_enabled(emulator(request).config.store_default),
        "chats": len(s.store.chats),
        "groups": len(s.groups),
        "pairingCode": s.pairing[0] if s.pairing else None,
    })


@router.post("/faults")
async def set_faults(request: Request) -> JSONResponse:
    emu = emulator(request)
    emu.faults = parse_faults(await json_body(request, {}))
    return created(emu.faults.as_dict())


@router.get("/faults")
async def get_faults(request: Request) -> JSONResponse:
    return ok(emulator(request).faults.as_dict())


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    emu = emulator(request)
    return ok({"webhooks": emu.webhooks.stats.as_dict(), "sessions": len(emu.sessions.sessions),
               "calls": len(emu.calls.entries)})


@router.get("/calls")
async def calls(request: Request) -> JSONResponse:
    q = request.query_params
    return ok(emulator(request).calls.query(q.get("method"), q.get("path"), q.get("session")))


@router.get("/events")
async def events(request: Request) -> JSONResponse:
    """Every emitted webhook envelope (also those no webhook subscribed to), oldest first."""
    q = request.query_params
    items = [e for e in emulator(request).webhooks.events
             if (not q.get("session") or e["session"] == q.get("session"))
             and (not q.get("event") or e["event"] == q.get("event"))]
    return ok(items)


@router.post("/reset")
async def reset(request: Request) -> JSONResponse:
    await emulator(request).reset()
    return created({"reset": True})
