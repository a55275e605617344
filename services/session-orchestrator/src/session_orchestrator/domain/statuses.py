"""The session state machine, as pure functions: no I/O, no clocks, no broker.

WAHA's lifecycle (docs/waha.md#session-lifecycle):

    STOPPED ──start──► STARTING ──paired──► WORKING
                       STARTING ──not paired──► SCAN_QR_CODE ──scanned──► WORKING
                       SCAN_QR_CODE ──QRs exhausted──► FAILED
    WORKING ──network drop──► STARTING ;  WORKING ──logged out on phone──► FAILED
    any running state ──stop──► STOPPED ;  restart/logout ──► STARTING
"""

from dataclasses import dataclass
from typing import get_args

from fleet_shared.contracts.events import SessionStatus

STOPPED: SessionStatus = "STOPPED"
STARTING: SessionStatus = "STARTING"
SCAN_QR_CODE: SessionStatus = "SCAN_QR_CODE"
WORKING: SessionStatus = "WORKING"
FAILED: SessionStatus = "FAILED"

STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)

# WAHA statuses that have no name of their own here: passkey pairing is still pairing.
_WAHA_ALIASES: dict[str, SessionStatus] = {
    "PASSKEY_REQUIRED": SCAN_QR_CODE,
    "PASSKEY_CONFIRMATION_REQUIRED": SCAN_QR_CODE,
}

# What may follow what, as the reports arrive. WAHA's logout and restart report STOPPED and STARTING
# in the same millisecond and deliver both webhooks at once: when STARTING arrives first, the later
# STOPPED wins the tie, and what follows STARTING (a QR, or WORKING for a linked session) then comes
# from STOPPED with no report lost.
TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    STOPPED: frozenset({STARTING, SCAN_QR_CODE, WORKING}),
    STARTING: frozenset({SCAN_QR_CODE, WORKING, FAILED, STOPPED}),
    # SCAN_QR_CODE -> SCAN_QR_CODE is the QR rotating: reported again, not a change.
    SCAN_QR_CODE: frozenset({SCAN_QR_CODE, WORKING, FAILED, STOPPED, STARTING}),
    WORKING: frozenset({STARTING, FAILED, STOPPED}),
    FAILED: frozenset({STARTING, STOPPED}),
}

RUNNING: frozenset[SessionStatus] = frozenset({STARTING, SCAN_QR_CODE, WORKING})

# What the user (or the idle clean-up) last asked for: kept in the registry as `desired`.
DESIRED_RUNNING = "running"  # start, qr, restart
DESIRED_STOPPED = "stopped"  # stop, idle stop: reconciliation never starts such a session again


class UnknownStatus(ValueError):
    pass


def normalize_status(waha_status: object) -> SessionStatus:
    """A status as WAHA spells it -> one of ours; raise `UnknownStatus` for anything else."""
    if isinstance(waha_status, str):
        value = waha_status.strip().upper()
        if value in STATUSES:
            return value
        if value in _WAHA_ALIASES:
            return _WAHA_ALIASES[value]
    raise UnknownStatus(f"unknown WAHA session status {waha_status!r}")


def is_allowed(current: SessionStatus, new: SessionStatus) -> bool:
    """Whether WAHA's lifecycle leads from `current` to `new` in one step."""
    return new in TRANSITIONS[current]


@dataclass(frozen=True)
class SessionState:
    """What the registry holds about one user's session that a status report may change."""

    status: SessionStatus = STOPPED
    phone_number: str | None = None
    last_error: str | None = None
    last_reported_at_ms: int | None = None
    # The change the last applied report made (None when it changed nothing), so a redelivery can
    # re-emit exactly the same event.
    last_change: "StatusChange | None" = None


@dataclass(frozen=True)
class StatusReport:
    status: SessionStatus
    reported_at_ms: int
    phone_number: str | None = None


# Who said a status: WAHA (its session.status webhook) or the orchestrator itself (what it saw when
# reconciling with WAHA's session list, or WAHA being unreachable).
SOURCE_WAHA = "waha"
SOURCE_ORCHESTRATOR = "orchestrator"


@dataclass(frozen=True)
class StatusChange:
    status: SessionStatus
    previous_status: SessionStatus
    phone_number: str | None
    last_error: str | None
    reported_at_ms: int  # WAHA's report time, or the observation time for the orchestrator's own
    source: str = SOURCE_WAHA


@dataclass(frozen=True)
class ReportDecision:
    """`apply` = write `state`; `change` = the event to publish (None when the status stays)."""

    apply: bool
    state: SessionState
    change: StatusChange | None
    # A report seen before whose change may not have been published (redelivery): publish it again.
    replay: bool = False
    # The report does not follow WAHA's lifecycle from what we knew (a webhook was lost): still applied.
    unexpected: bool = False


FAILED_ERROR = "WAHA reported the session FAILED (restart it, or log out and scan again)"


def decide_report(state: SessionState, report: StatusReport) -> ReportDecision:
    """Apply a `session.status` webhook: WAHA is the truth, but only its newest word counts."""
    last = state.last_reported_at_ms
    if last is not None and report.reported_at_ms < last:
        return ReportDecision(apply=False, state=state, change=None)
    if last is not None and report.reported_at_ms == last and report.status == state.status:
        # The same report again: a redelivery (maybe after a crash between write and publish)
        # or a duplicate webhook. Its change, if it made one, is re-emitted with the same id.
        # (Another status in the same millisecond is applied below: the later arrival wins a tie.)
        change = state.last_change
        same = change is not None and change.reported_at_ms == last and change.status == report.status
        return ReportDecision(apply=False, state=state, change=change if same else None, replay=same)

    phone = state.phone_number
    if report.status == WORKING and report.phone_number:
        phone = report.phone_number
    if report.status == WORKING:
        error = None
    elif report.status == FAILED:
        error = state.last_error or FAILED_ERROR
    else:
        error = state.last_error

    changed = report.status != state.status
    change = (
        StatusChange(
            status=report.status,
            previous_status=state.status,
            phone_number=phone,
            last_error=error,
            reported_at_ms=report.reported_at_ms,
        )
        if changed
        else None
    )
    new_state = SessionState(
        status=report.status,
        phone_number=phone,
        last_error=error,
        last_reported_at_ms=report.reported_at_ms,
        last_change=change,
    )
    return ReportDecision(
        apply=True,
        state=new_state,
        change=change,
        unexpected=changed and not is_allowed(state.status, report.status),
    )


def decide_observation(
    state: SessionState,
    status: SessionStatus,
    observed_at_ms: int,
    *,
    phone_number: str | None = None,
    error: str | None = None,
) -> ReportDecision:
    """A status the orchestrator saw itself: WAHA's session list at start-up, or WAHA unreachable.

    It changes the status but not `last_reported_at_ms`: WAHA's next webhook is still newer than
    anything WAHA said before, so it is applied whatever our clock said. Same status: nothing to do.
    """
    if status == state.status:
        return ReportDecision(apply=False, state=state, change=None)
    phone = phone_number if status == WORKING and phone_number else state.phone_number
    if status == WORKING:
        last_error = None
    elif status == FAILED:
        last_error = error or state.last_error or FAILED_ERROR
    else:
        last_error = error or state.last_error
    change = StatusChange(
        status=status,
        previous_status=state.status,
        phone_number=phone,
        last_error=last_error,
        reported_at_ms=observed_at_ms,
        source=SOURCE_ORCHESTRATOR,
    )
    new_state = SessionState(
        status=status,
        phone_number=phone,
        last_error=last_error,
        last_reported_at_ms=state.last_reported_at_ms,
        last_change=change,
    )
    return ReportDecision(apply=True, state=new_state, change=change)
