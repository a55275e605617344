"""Operators' reads of the session registry, and the upkeep commands the orchestrator sends itself.

Admin queries go to `<prefix>.queries` like every other query and are answered by the orchestrator:
- one user's record: `user.<id>.session.admin_get` (the envelope's user is the user inspected);
- fleet-wide: `system.admin.sessions.list` and `system.admin.sessions.count`
  (`fleet_shared.routing.admin_key`; the envelope's user is the admin who asks).
Admin reads never count as a user's activity.

Upkeep commands are published by the orchestrator to its own `<prefix>.orchestrator.partition`
exchange as `user.<id>.session.<action>` (with `x-user-id`), so they reach the user's partition and are applied by the one replica
that drives that user, in order with the user's own commands. Nobody waits for a reply.
"""

from pydantic import Field

from .base import Contract
from .events import SessionStatus

MAX_ADMIN_LIST = 10_000

# ---- queries ---------------------------------------------------------------------------------


class AdminGetSession(Contract):
    """One user's whole registry record (the user is the routing key's)."""

    TYPE = "session.admin_get"


class AdminListSessions(Contract):
    """Sessions, ordered by user id. Default: the running ones (STARTING, SCAN_QR_CODE, WORKING)."""

    TYPE = "sessions.list"

    status: SessionStatus | None = None  # only this status
    all: bool = False  # every user the registry knows, whatever the status
    limit: int = Field(default=1000, ge=1, le=MAX_ADMIN_LIST)


class AdminCountSessions(Contract):
    TYPE = "sessions.count"


# ---- reply payloads --------------------------------------------------------------------------


class AdminSessionItem(Contract):
    user_id: str
    session: str
    status: SessionStatus
    last_activity: str | None = None


class AdminSessionCount(Contract):
    count: int  # every session the registry knows
    by_status: dict[str, int]
    running: int  # STARTING + SCAN_QR_CODE + WORKING: what MAX_SESSIONS limits
    max_sessions: int | None = None


class StatusEntry(Contract):
    status: SessionStatus
    at: str
    # "waha": a session.status webhook; "orchestrator": what the orchestrator saw itself
    # (reconciliation at start-up, WAHA unreachable).
    source: str = "waha"


class AdminSessionRecord(Contract):
    user_id: str
    session: str
    status: SessionStatus
    phone_number: str | None = None
    last_error: str | None = None
    last_activity: str | None = None
    # "running" after start/qr/restart, "stopped" after stop or an idle stop; None before any.
    desired: str | None = None
    idle_stopped_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    status_history: list[StatusEntry] = Field(default_factory=list)


# ---- upkeep commands (orchestrator -> the user's partition) ---------------------------------


class IdleStopSession(Contract):
    """Stop the session if the user is still idle when this is applied (never a logout)."""

    TYPE = "session.idle_stop"


class ReconcileSession(Contract):
    """Compare the registry with WAHA for this user and repair the difference."""

    TYPE = "session.reconcile"


ADMIN_QUERY_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c for c in (AdminGetSession, AdminListSessions, AdminCountSessions)
}
class ReconfigureSession(Contract):
    """Give the user's WAHA session the config this version sets (when WAHA's differs)."""

    TYPE = "session.reconfigure"


UPKEEP_COMMAND_TYPES: dict[str, type[Contract]] = {c.TYPE: c for c in (IdleStopSession, ReconcileSession, ReconfigureSession)}
ADMIN_TYPES: dict[str, type[Contract]] = {**ADMIN_QUERY_TYPES, **UPKEEP_COMMAND_TYPES}
