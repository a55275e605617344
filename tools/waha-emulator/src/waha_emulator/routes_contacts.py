"""Contacts (/api/contacts*, /api/{session}/contacts/{id}) and the lid <-> phone number map (/api/{session}/lids*)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import chatviews
from .deps import emulator, note_session, ok, query_choice, query_flag, query_int
from .errors import TextError, ValidationFailed
from .messages import ensure_suffix, sort_page

router = APIRouter()

ORDERS = ("desc", "asc")


def _session_query(request: Request) -> str:
    session = request.query_params.get("session")
    if not session:
        raise ValidationFailed(["session should not be empty"])
    note_session(request, session)
    return session


def _null() -> Response:
    return Response(status_code=200)  # NestJS answers an empty body for null


@router.get("/api/contacts/all")
async def all_contacts(request: Request) -> JSONResponse:
    errors: list[str] = []
    limit = query_int(request, "limit", None, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    sort_by = query_choice(request, "sortBy", ("id", "name"), None, errors)
    order = query_choice(request, "sortOrder", ORDERS, "asc", errors)
    session = _session_query(request)
    if errors:
        raise ValidationFailed(errors)
    emu = emulator(request)
    s = await emu.sessions.working(session)
    store = chatviews.require_store(s, emu.config.store_default)
    items = [c.as_waha() for c in store.contacts.values()]
    return ok(sort_page(items, (lambda c: c.get(sort_by)) if sort_by else None, order == "desc", limit, offset))


async def _contact(request: Request, session: str, contact_id: str) -> Response:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    store = chatviews.require_store(s, emu.config.store_default)
    contact = store.contacts.get(ensure_suffix(contact_id))
    return ok(contact.as_waha()) if contact else _null()


@router.get("/api/contacts")
async def get_contact(request: Request) -> Response:
    session = _session_query(request)
    contact_id = request.query_params.get("contactId")
    if not contact_id:
        raise ValidationFailed(["contactId should not be empty"])
    return await _contact(request, session, contact_id)


@router.get("/api/{session}/contacts/{contact_id}")
async def get_session_contact(request: Request, session: str, contact_id: str) -> Response:
    return await _contact(request, session, contact_id)


@router.get("/api/contacts/profile-picture")
async def profile_picture(request: Request) -> JSONResponse:
    errors: list[str] = []
    query_flag(request, "refresh", False, errors)
    session = _session_query(request)
    contact_id = request.query_params.get("contactId")
    if not contact_id:
        errors.append("contactId should not be empty")
    if errors:
        raise ValidationFailed(errors)
    assert contact_id is not None
    s = await emulator(request).sessions.working(session)
    return ok({"profilePictureURL": chatviews.picture_of(s, contact_id)})


# -- lids -----------------------------------------------------------------------------------------

@router.get("/api/{session}/lids")
async def all_lids(request: Request, session: str) -> JSONResponse:
    errors: list[str] = []
    limit = query_int(request, "limit", 100, errors)
    offset = query_int(request, "offset", 0, errors) or 0
    if errors:
        raise ValidationFailed(errors)
    emu = emulator(request)
    s = await emu.sessions.working(session)
    store = chatviews.require_store(s, emu.config.store_default)
    items = [{"lid": lid, "pn": pn} for lid, pn in store.lids.items()]
    return ok(sort_page(items, lambda x: x["lid"], False, limit, offset))  # always by lid, ascending


@router.get("/api/{session}/lids/count")
async def lids_count(request: Request, session: str) -> JSONResponse:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    return ok({"count": len(chatviews.require_store(s, emu.config.store_default).lids)})


@router.get("/api/{session}/lids/pn/{phone}")
async def lid_by_phone(request: Request, session: str, phone: str) -> JSONResponse:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    store = chatviews.require_store(s, emu.config.store_default)
    if phone.endswith("@lid"):
        return ok({"lid": phone, "pn": None})
    pn = ensure_suffix(phone.removeprefix("+").replace("@s.whatsapp.net", "@c.us"))
    return ok({"lid": store.pns.get(pn), "pn": pn})


@router.get("/api/{session}/lids/{lid}")
async def phone_by_lid(request: Request, session: str, lid: str) -> JSONResponse:
    emu = emulator(request)
    s = await emu.sessions.working(session)
    lid = lid if "@" in lid else f"{lid}@lid"
    if not lid.endswith("@lid"):
        raise TextError(422, "Invalid LID - it must end with @lid")
    store = chatviews.require_store(s, emu.config.store_default)
    return ok({"lid": lid, "pn": store.lids.get(lid)})
