"""Reconciling the registry with WAHA, as pure decisions (the I/O is in `upkeep.py` and `repairs.py`).

At start-up each replica compares the registry with WAHA's session list and sends a
`session.reconcile` command through the partition of every user whose two records disagree; the
replica that drives that user looks at WAHA again and applies `repair_for`:

| WAHA says                   | registry says                | repair                                   |
|-----------------------------|------------------------------|------------------------------------------|
| running (STARTING, SCAN_QR_CODE, WORKING) | nothing        | ADOPT: create the record, observe status |
| running                     | another status               | OBSERVE WAHA's status                    |
| STOPPED, or no such session | WORKING, not stopped by us   | START again (a linked session needs no QR) |
| STOPPED, or no such session | STARTING/SCAN_QR_CODE/FAILED | OBSERVE STOPPED (pairing was cut short)  |
| FAILED                      | another status               | OBSERVE FAILED                           |
| anything else               |                              | NOTHING                                  |
"""

from enum import StrEnum
from typing import Any

from fleet_shared.ids import session_name_for, validate_user_id

from .domain import (
    DESIRED_STOPPED,
    FAILED,
    RUNNING,
    STOPPED,
    WORKING,
    SessionStatus,
    UnknownStatus,
    normalize_status,
)
from .lifecycle import USER_ID_METADATA


class Repair(StrEnum):
    NOTHING = "nothing"
    ADOPT = "adopt"
    OBSERVE = "observe"
    START = "start"


def repair_for(recorded: SessionStatus | None, desired: str | None, waha: SessionStatus | None) -> Repair:
    """`recorded`: the registry's status (None: no record); `waha`: WAHA's (None: WAHA has no such session)."""
    if waha in RUNNING:
        if recorded is None:
            return Repair.ADOPT
        return Repair.NOTHING if recorded == waha else Repair.OBSERVE
    if waha == FAILED:
        return Repair.NOTHING if recorded in (None, FAILED) else Repair.OBSERVE
    # WAHA has it STOPPED or lost it altogether.
    if recorded == WORKING and desired != DESIRED_STOPPED:
        return Repair.START
    if recorded is None or recorded == STOPPED:
        return Repair.NOTHING
    return Repair.OBSERVE


def observed_status(waha: SessionStatus | None) -> SessionStatus:
    """What OBSERVE records: WAHA's status, STOPPED when WAHA has no such session."""
    return waha if waha is not None else STOPPED


def owner_of(info: Any) -> str | None:
    """The user a WAHA session belongs to: its metadata names a user whose session name it has.
    Anything else (hand-made, another system's, a forged name) belongs to nobody here."""
    if not isinstance(info, dict):
        return None
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    user_id = metadata.get(USER_ID_METADATA)
    if not isinstance(user_id, str):
        return None
    try:
        validate_user_id(user_id)
    except ValueError:
        return None
    return user_id if info.get("name") == session_name_for(user_id) else None


def waha_status_of(info: Any) -> SessionStatus | None:
    try:
        return normalize_status(info.get("status")) if isinstance(info, dict) else None
    except UnknownStatus:
        return None


def phone_of(info: Any) -> str | None:
    """The linked phone number from a WAHA SessionInfo's `me` (`<digits>@c.us`)."""
    me = info.get("me") if isinstance(info, dict) else None
    raw = me.get("id") if isinstance(me, dict) else None
    if not isinstance(raw, str):
        return None
    return raw.split("@", 1)[0] or None


def reconcile_plan(
    waha_sessions: list[Any], registry: dict[str, tuple[SessionStatus, str | None]]
) -> list[str]:
    """Users whose registry record and WAHA session disagree (sorted). `registry`: user -> (status,
    desired) for every record that is not STOPPED; a user missing there is STOPPED or unknown."""
    waha: dict[str, SessionStatus | None] = {}
    for info in waha_sessions:
        user_id = owner_of(info)
        if user_id is not None:
            waha[user_id] = waha_status_of(info)
    users = set(waha) | set(registry)
    return sorted(
        user_id
        for user_id in users
        if repair_for(*(registry.get(user_id) or (None, None)), waha.get(user_id)) is not Repair.NOTHING
    )
