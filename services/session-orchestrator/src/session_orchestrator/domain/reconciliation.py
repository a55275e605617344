"""Reconciling the registry with WAHA, and idleness, as pure decisions (the I/O is in
`entrypoints/jobs.py` and `handlers/upkeep.py`).

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

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fleet_shared.waha import phone_number, session_owner

from .session_config import config_is_current
from .statuses import (
    DESIRED_STOPPED,
    FAILED,
    RUNNING,
    STOPPED,
    WORKING,
    SessionStatus,
    UnknownStatus,
    normalize_status,
)


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
    """The user a WAHA SessionInfo belongs to (`fleet_shared.waha.session_owner`), or None."""
    if not isinstance(info, dict):
        return None
    config = info.get("config")
    return session_owner(info.get("name"), config.get("metadata") if isinstance(config, dict) else None)


def waha_status_of(info: Any) -> SessionStatus | None:
    try:
        return normalize_status(info.get("status")) if isinstance(info, dict) else None
    except UnknownStatus:
        return None


def phone_of(info: Any) -> str | None:
    """The linked phone number from a WAHA SessionInfo's `me` (`<digits>@c.us`)."""
    me = info.get("me") if isinstance(info, dict) else None
    return phone_number(me.get("id") if isinstance(me, dict) else None)


def reconcile_plan(waha_sessions: list[Any], registry: dict[str, tuple[str, str | None]]) -> list[str]:
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
        if repair_for(*_recorded(registry.get(user_id)), waha.get(user_id)) is not Repair.NOTHING
    )


def outdated_configs(waha_sessions: list[Any], desired_config: Callable[[str], dict]) -> list[str]:
    """The users whose WAHA session (ours) has another config than `desired_config(user)` (sorted)."""
    outdated = []
    for info in waha_sessions:
        user_id = owner_of(info)
        if user_id is not None and not config_is_current(info.get("config"), desired_config(user_id)):
            outdated.append(user_id)
    return sorted(outdated)


def _recorded(record: tuple[str, str | None] | None) -> tuple[SessionStatus | None, str | None]:
    """(status, desired) of a registry record, (None, None) without one."""
    if record is None:
        return None, None
    status, desired = record
    try:
        return normalize_status(status), desired
    except UnknownStatus:
        return None, desired


def is_idle(last_activity: datetime | None, now: datetime, timeout: timedelta) -> bool:
    """No activity for `timeout`. A record without any activity is not idle (its clock never started)."""
    return last_activity is not None and now - last_activity >= timeout
