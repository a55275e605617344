"""/_emulator/sessions/{name}/...: pairing by code, the synced history, contacts and groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import groups as group_ops
from . import history
from .deps import conflict, control_session, created, emulator, field_errors, json_body, object_body
from .errors import ValidationFailed, WahaError
from .groups import Group, Member, new_group_id
from .messages import ensure_suffix, now_s
from .pairing import pair
from .routes_control_chat import INBOUND_KINDS, parse_media
from .state import Session, StateConflict, Status
from .store import Contact

router = APIRouter(prefix="/_emulator/sessions/{name}")

MAX_CHATS = 5000
GROUP_ACTIONS = ("add", "remove", "promote", "demote")


@router.post("/pair")
async def pair_code(request: Request, name: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    errors = field_errors(body, ("code",), ("pushName",))
    if errors:
        raise ValidationFailed(errors)
    emu = emulator(request)
    try:
        return created(pair(emu.sessions, s, body["code"], body.get("pushName")).info(emu.config.engine))
    except StateConflict as exc:
        return conflict(exc)


# -- history --------------------------------------------------------------------------------------

def _int(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _message_errors(i: int, m: Any, group: bool) -> list[str]:
    prefix = f"messages.{i}."
    if not isinstance(m, dict):
        return [prefix[:-1] + " must be an object"]
    errors = [prefix + e for e in field_errors(m, (), ("id", "from", "participant", "body", "type"))]
    if not isinstance(m.get("fromMe"), bool):
        errors.append(prefix + "fromMe must be a boolean value")
    if not _int(m.get("timestamp"), 0, 10**11):
        errors.append(prefix + "timestamp must be a Unix time in seconds")
    if (m.get("type") or "text") not in INBOUND_KINDS:
        errors.append(prefix + "type must be one of the following values: " + ", ".join(INBOUND_KINDS))
    if group and m.get("fromMe") is False and not (m.get("participant") or m.get("from")):
        errors.append(prefix + "participant must be set for a message of someone else in a group")
    return errors


def _chat_errors(i: int, chat: Any) -> list[str]:
    prefix = f"chats.{i}."
    if not isinstance(chat, dict):
        return [prefix[:-1] + " must be an object"]
    errors = [prefix + e for e in field_errors(chat, ("id",), ("name", "picture"))]
    errors += [prefix + e for e in field_errors(chat, (), ("isGroup",), kind=bool, noun="a boolean value")]
    messages = chat.get("messages") or []
    if not isinstance(messages, list):
        return errors + [prefix + "messages must be an array"]
    group = bool(chat.get("isGroup")) or str(chat.get("id", "")).endswith("@g.us")
    for j, m in enumerate(messages):
        errors += [prefix + e for e in _message_errors(j, m, group)]
        if isinstance(m, dict) and (m.get("type") or "text") != "text":
            parse_media(m["type"], m.get("media"), "check", errors, prefix=f"{prefix}messages.{j}.media")
    return errors


@router.post("/history")
async def load_history(request: Request, name: str) -> JSONResponse:
    """The history WhatsApp syncs at pairing, put in the store (no webhooks)."""
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    if "generate" in body:
        gen = body["generate"]
        if not isinstance(gen, dict):
            raise ValidationFailed(["generate must be an object"])
        errors = [] if _int(gen.get("chats"), 0, MAX_CHATS) else [f"generate.chats must be an integer 0-{MAX_CHATS}"]
        per_chat = gen.get("messagesPerChat", 20)
        if not _int(per_chat, 0, history.MAX_MESSAGES):
            errors.append("generate.messagesPerChat must be a non-negative integer")
        errors += [f"generate.{e}" for e in field_errors(gen, (), ("seed",))]
        if gen.get("until") is not None and not _int(gen.get("until"), 0, 10**11):
            errors.append("generate.until must be a Unix time in seconds")
        if not errors and gen["chats"] * per_chat > history.MAX_MESSAGES:
            errors.append(f"generate.chats x generate.messagesPerChat must be at most {history.MAX_MESSAGES}")
        if errors:
            raise ValidationFailed(errors)
        count = history.generate(s, gen["chats"], per_chat, gen.get("seed"), gen.get("until"))
        return created({"chats": gen["chats"], "messages": count})
    chats = body.get("chats")
    if not isinstance(chats, list) or len(chats) > MAX_CHATS:
        raise ValidationFailed([f"chats must be an array of at most {MAX_CHATS} chats (or give generate)"])
    errors = [e for i, chat in enumerate(chats) for e in _chat_errors(i, chat)]
    if errors:
        raise ValidationFailed(errors)

    def media(kind: str, spec: Any, seed: str) -> Any:
        return parse_media(kind, spec, f"{s.name}:{seed}", [])

    count = history.load_chats(s, chats, media)
    return created({"chats": len(chats), "messages": count})


# -- contacts -------------------------------------------------------------------------------------

@router.post("/contacts")
async def set_contacts(request: Request, name: str) -> JSONResponse:
    """Upsert contacts: `{"contacts": [{"id" | "phone", "name"?, "pushName"?, "picture"?}]}`."""
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    contacts = body.get("contacts")
    if not isinstance(contacts, list):
        raise ValidationFailed(["contacts must be an array"])
    errors: list[str] = []
    for i, c in enumerate(contacts):
        if not isinstance(c, dict) or not isinstance(c.get("id") or c.get("phone"), str):
            errors.append(f"contacts.{i}.id (or phone) must be a string")
        else:
            errors += [f"contacts.{i}.{e}" for e in field_errors(c, (), ("name", "pushName", "picture"))]
    if errors:
        raise ValidationFailed(errors)
    for c in contacts:
        cid = ensure_suffix((c.get("id") or c["phone"]).removeprefix("+"))
        contact = s.store.contacts.setdefault(cid, Contact(cid))
        contact.name = c.get("name", contact.name)
        contact.pushname = c.get("pushName", contact.pushname)
        contact.picture = c.get("picture", contact.picture)
    return created({"contacts": len(contacts)})


# -- groups ---------------------------------------------------------------------------------------

def _working(s: Session) -> None:
    if s.status != Status.WORKING:
        raise StateConflict(s, [str(Status.WORKING)])


def _members(request: Request, s: Session, items: Any, errors: list[str]) -> list[Member]:
    if not isinstance(items, list):
        errors.append("participants must be an array")
        return []
    out = []
    for i, item in enumerate(items):
        spec = {"id": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
            errors.append(f"participants.{i} must be a phone number or {{id, admin?, asLid?}}")
            continue
        if spec.get("admin") not in (None, "admin", "superadmin"):
            errors.append(f"participants.{i}.admin must be null, admin or superadmin")
            continue
        pn = ensure_suffix(spec["id"].removeprefix("+"))
        mid = emulator(request).messaging.sender(s, pn, bool(spec.get("asLid")))
        out.append(Member(mid, pn if pn.endswith("@c.us") else s.store.lids.get(pn), spec.get("admin")))
    return out


def _group(s: Session, gid: str) -> Group:
    group = s.groups.get(gid)
    if group is None:
        raise WahaError(404, {"error": "Group not found", "session": s.name, "group": gid})
    return group


def _emit(request: Request, s: Session) -> group_ops.Emit:
    return lambda event, payload: emulator(request).sessions.emit(s, event, payload)


def _on_group(request: Request, s: Session, group_id: str,
              change: Callable[[Group, group_ops.Emit], None]) -> JSONResponse:
    """Something happens to a known group of a WORKING session; 201 with the group's metadata."""
    group = _group(s, group_id)
    try:
        _working(s)
    except StateConflict as exc:
        return conflict(exc)
    change(group, _emit(request, s))
    return created(group.metadata())


@router.post("/groups")
async def create_group(request: Request, name: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    errors = field_errors(body, ("subject",), ("id", "description", "picture"))
    members = _members(request, s, body.get("participants", []), errors)
    if errors:
        raise ValidationFailed(errors)
    try:
        _working(s)
    except StateConflict as exc:
        return conflict(exc)
    gid = body.get("id") or new_group_id(f"{s.name}:{len(s.groups)}:{now_s()}")
    gid = gid if "@" in gid else f"{gid}@g.us"
    me = s.linked_me["id"] if s.linked_me else ""
    group = group_ops.create(s.groups, _emit(request, s), gid, body["subject"], me, members,
                             body.get("description"), body.get("picture"), now_s())
    chat = s.store.chat(gid, create=True)  # WhatsApp makes the group's chat along with it
    assert chat is not None
    chat.timestamp = max(chat.timestamp, group.creation)
    return created(group.metadata())


@router.post("/groups/{group_id}")
async def update_group(request: Request, name: str, group_id: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    errors = field_errors(body, (), ("subject", "description", "picture"))
    if errors:
        raise ValidationFailed(errors)
    return _on_group(request, s, group_id, lambda group, emit: group_ops.update(
        group, emit, body.get("subject"), body.get("description"), body.get("picture")))


@router.post("/groups/{group_id}/participants")
async def group_participants(request: Request, name: str, group_id: str) -> JSONResponse:
    body = object_body(await json_body(request, {}))
    s = control_session(request, name)
    errors = [] if body.get("action") in GROUP_ACTIONS else [
        f"action must be one of the following values: {', '.join(GROUP_ACTIONS)}"]
    errors += field_errors(body, (), ("author",))
    members = _members(request, s, body.get("participants"), errors)
    if errors:
        raise ValidationFailed(errors)
    me = s.linked_me["id"] if s.linked_me else None
    return _on_group(request, s, group_id, lambda group, emit: group_ops.change(
        s.groups, group, emit, body["action"], members, me,
        ensure_suffix(body["author"]) if body.get("author") else group.owner))
