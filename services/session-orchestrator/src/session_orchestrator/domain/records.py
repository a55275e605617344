"""A user's session record as the registry keeps it (one document per user), and what is read from it.

    {userId (unique), session, status, phoneNumber, lastError, lastActivity, desired,
     idleStoppedAt, admittedAt,
     statusHistory: [{status, at, reportedAtMs, source}] (newest last, at most HISTORY_LENGTH),
     lastReportedAtMs, lastChange, createdAt, updatedAt}

`status` is written from WAHA's own reports (webhooks), guarded by `lastReportedAtMs` so an older
report never overwrites a newer one, and from the orchestrator's own observations (reconciliation,
WAHA unreachable), which leave `lastReportedAtMs` alone so WAHA's next word still wins. Commands
record activity, errors, what the user wants (`desired`) and the session name.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fleet_shared.contracts.commands import SessionView
from fleet_shared.ids import session_name_for

from .statuses import SOURCE_WAHA, STOPPED, SessionState, StatusChange

HISTORY_LENGTH = 10


def iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def state_of(doc: dict | None) -> SessionState:
    if not doc:
        return SessionState()
    change = doc.get("lastChange")
    return SessionState(
        status=doc.get("status") or STOPPED,
        phone_number=doc.get("phoneNumber"),
        last_error=doc.get("lastError"),
        last_reported_at_ms=doc.get("lastReportedAtMs"),
        last_change=StatusChange(**_snake(change)) if isinstance(change, dict) else None,
    )


def view_of(user_id: str, doc: dict | None) -> SessionView:
    """The contract's status shape; a user never seen is STOPPED with their session name."""
    doc = doc or {}
    return SessionView(
        user_id=user_id,
        session=doc.get("session") or session_name_for(user_id),
        status=doc.get("status") or STOPPED,
        phone_number=doc.get("phoneNumber"),
        last_error=doc.get("lastError"),
        last_activity=iso(doc.get("lastActivity")),
        updated_at=iso(doc.get("updatedAt")),
    )


_CHANGE_FIELDS = {
    "status": "status",
    "previousStatus": "previous_status",
    "phoneNumber": "phone_number",
    "lastError": "last_error",
    "reportedAtMs": "reported_at_ms",
    "source": "source",
}


def _snake(change: dict) -> dict:
    values = {snake: change.get(camel) for camel, snake in _CHANGE_FIELDS.items()}
    values["source"] = values["source"] or SOURCE_WAHA
    return values


def change_fields(change: StatusChange) -> dict:
    """A change as the record's `lastChange` holds it."""
    values = asdict(change)
    return {camel: values[snake] for camel, snake in _CHANGE_FIELDS.items()}
