"""The groups an account is in, as WhatsApp's server tells NOWEB (Baileys' GroupMetadata), and the
group.v2.* events (src/core/engines/noweb/groups.noweb.ts: ToGroupInfo, ToGroupV2*Event)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .messages import now_ms, to_jid

ROLES = {None: "participant", "admin": "admin", "superadmin": "superadmin"}
ACTIONS = {"add": ("join", "participant"), "remove": ("leave", "left"), "promote": ("promote", "admin"),
           "demote": ("demote", "admin")}  # ToGroupV2Participants reports "admin" for a demotion too


def new_group_id(seed: str) -> str:
    return f"120363{int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 10**12:012d}@g.us"


@dataclass(slots=True)
class Member:
    id: str  # 49...@c.us or ...@lid
    pn: str | None  # 49...@c.us
    admin: str | None = None  # None, "admin" or "superadmin"

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": to_jid(self.id), "admin": self.admin}
        if self.id.endswith("@lid") and self.pn:
            out["phoneNumber"] = to_jid(self.pn)
        return out

    def v2(self) -> dict[str, Any]:
        return {"id": self.id, "pn": self.pn, "role": ROLES[self.admin]}


@dataclass(slots=True)
class Group:
    id: str
    subject: str
    owner: str
    creation: int
    members: list[Member] = field(default_factory=list)
    description: str | None = None
    picture: str | None = None
    announce: bool = False
    restrict: bool = False
    member_add_mode: bool = False
    join_approval: bool = False
    invite_code: str | None = None

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id or m.pn == member_id), None)

    def metadata(self, exclude_participants: bool = False) -> dict[str, Any]:
        lid_addressed = any(m.id.endswith("@lid") for m in self.members)
        out: dict[str, Any] = {
            "id": self.id, "addressingMode": "lid" if lid_addressed else "pn", "owner": to_jid(self.owner),
            "subject": self.subject, "subjectOwner": to_jid(self.owner), "subjectTime": self.creation,
            "size": len(self.members), "creation": self.creation, "desc": self.description,
            "restrict": self.restrict, "announce": self.announce, "isCommunity": False,
            "isCommunityAnnounce": False, "joinApprovalMode": self.join_approval,
            "memberAddMode": self.member_add_mode, "participants": [m.metadata() for m in self.members],
        }
        if exclude_participants:
            del out["participants"]
        return out

    def info(self) -> dict[str, Any]:
        """ToGroupInfo (it copies `announce` into membersCanSendMessages as is)."""
        out: dict[str, Any] = {
            "id": self.id, "subject": self.subject, "description": self.description,
            "participants": [m.v2() for m in self.members] or None, "membersCanAddNewMember": self.member_add_mode,
            "membersCanSendMessages": self.announce, "newMembersApprovalRequired": self.join_approval,
        }
        if self.invite_code:
            out["invite"] = f"https://chat.whatsapp.com/{self.invite_code}"
        return out


def join_event(group: Group) -> dict[str, Any]:
    return {"timestamp": now_ms(), "group": group.info(), "_data": group.metadata()}


def update_event(group: Group, changed: dict[str, Any]) -> dict[str, Any]:
    data = {"id": group.id, **changed}
    info = {"id": group.id}
    if "subject" in changed:
        info["subject"] = changed["subject"]
    if "desc" in changed:
        info["description"] = changed["desc"]
    return {"timestamp": now_ms(), "group": info, "_data": data}


def participants_event(group: Group, action: str, members: list[Member], author: str | None) -> dict[str, Any]:
    kind, role = ACTIONS[action]
    return {"group": {"id": group.id}, "type": kind, "timestamp": now_ms(),
            "participants": [{"id": m.id, "role": role} for m in members],
            "_data": {"id": group.id, "author": to_jid(author) if author else None,
                      "participants": [to_jid(m.id) for m in members], "action": action}}


def leave_event(group: Group, action_data: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": now_ms(), "group": {"id": group.id}, "_data": action_data}


Emit = Callable[[str, dict[str, Any]], None]


def create(groups: dict[str, Group], emit: Emit, gid: str, subject: str, me: str, members: list[Member],
           description: str | None, picture: str | None, creation: int) -> Group:
    """Someone made a group with the user in it (as superadmin if the user made it): group.v2.join."""
    group = Group(gid, subject, me, creation, [*members, Member(me, me, "superadmin")], description=description,
                  picture=picture, invite_code=hashlib.sha256(gid.encode()).hexdigest()[:22])
    groups[gid] = group
    emit("group.v2.join", join_event(group))
    return group


def update(group: Group, emit: Emit, subject: str | None, description: str | None, picture: str | None) -> None:
    changed: dict[str, Any] = {}
    if subject is not None:
        group.subject = changed["subject"] = subject
    if description is not None:
        group.description = changed["desc"] = description
    if picture is not None:
        group.picture = picture
    emit("group.v2.update", update_event(group, changed))


def change(groups: dict[str, Group], group: Group, emit: Emit, action: str, members: list[Member],
           me: str | None, author: str | None) -> None:
    """add / remove / promote / demote: group.v2.participants, and group.v2.leave when the user is removed."""
    for m in members:
        current = group.member(m.id)
        if action == "add" and current is None:
            group.members.append(m)
        elif action == "remove" and current is not None:
            group.members.remove(current)
        elif current is not None:
            current.admin = "admin" if action == "promote" else None
    payload = participants_event(group, action, members, author)
    emit("group.v2.participants", payload)
    if action == "remove" and me is not None and any(me in (m.id, m.pn) for m in members):
        emit("group.v2.leave", leave_event(group, payload["_data"]))
        groups.pop(group.id, None)
