"""/api/sessions: create, list, get, update, delete, start/stop/restart/logout, me."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .deps import created, emulator, json_body, note_session, ok, query_bool
from .errors import ValidationFailed
from .validation import check_session_name, generate_session_name, normalize_config

router = APIRouter(prefix="/api/sessions")


def _info(request: Request, s: Any) -> dict[str, Any]:
    expand = request.query_params.getlist("expand")
    return s.info(emulator(request).config.engine, expand_apps="apps" in expand)


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(["body must be an object"])
    return body


@router.get("")
@router.get("/")
async def list_sessions(request: Request) -> JSONResponse:
    sessions = emulator(request).sessions.list(include_stopped=query_bool(request.query_params.get("all")))
    return ok([_info(request, s) for s in sessions])


@router.post("")
@router.post("/")
async def create_session(request: Request) -> JSONResponse:
    body = _body_object(await json_body(request, {}))
    errors: list[str] = []
    name = body.get("name")
    if name is None or name == "":
        name = generate_session_name()
    else:
        check_session_name(name, errors)
    start = body.get("start", False)  # the 2026.2.1 controller does `request.start || false`
    if start is not None and not isinstance(start, bool):
        errors.append("start must be a boolean value")
    if errors:
        raise ValidationFailed(errors)
    config = normalize_config(body.get("config"))
    note_session(request, name)
    s = emulator(request).sessions.create(name, config, bool(start))
    return created(_info(request, s))


@router.get("/{session}")
async def get_session(request: Request, session: str) -> JSONResponse:
    return ok(_info(request, emulator(request).sessions.require(session)))


@router.put("/{session}")
async def update_session(request: Request, session: str) -> JSONResponse:
    body = _body_object(await json_body(request, {}))
    manager = emulator(request).sessions
    manager.require(session)
    config = normalize_config(body.get("config"))
    return ok(_info(request, manager.update(session, config)))


@router.delete("/{session}")
async def delete_session(request: Request, session: str) -> Response:
    emulator(request).sessions.delete(session)
    return Response(status_code=200)


@router.post("/{session}/start")
async def start_session(request: Request, session: str) -> JSONResponse:
    return created(_info(request, emulator(request).sessions.start(session)))


@router.post("/{session}/stop")
async def stop_session(request: Request, session: str) -> JSONResponse:
    return created(_info(request, emulator(request).sessions.stop(session)))


@router.post("/{session}/restart")
async def restart_session(request: Request, session: str) -> JSONResponse:
    return created(_info(request, emulator(request).sessions.restart(session)))


@router.post("/{session}/logout")
async def logout_session(request: Request, session: str) -> JSONResponse:
    return created(_info(request, emulator(request).sessions.logout(session)))


@router.get("/{session}/me")
async def session_me(request: Request, session: str) -> JSONResponse:
    return ok(emulator(request).sessions.require(session).me)
