"""Writing a session's status into the registry and announcing the change.

Two sources: WAHA's `session.status` webhooks (reports, `reports.py`) and what the orchestrator saw
itself (observations: reconciliation at start-up, WAHA unreachable). Both are compare-and-set
writes, then `user.<id>.session.status_changed` with a deterministic id.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import SessionStatusChanged
from fleet_shared.ids import session_name_for

from ..adapters.ports import EventPublisher, StatusStore
from ..domain.statuses import ReportDecision, SessionState, SessionStatus, StatusChange, decide_observation
from ..metrics import STATUS_CHANGES

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 3


class StatusConflict(Exception):
    """The record kept changing under us: another writer won every compare-and-set."""


def status_changed_envelope(user_id: str, change: StatusChange, correlation_id: str | None) -> Envelope:
    return envelope(
        SessionStatusChanged(
            status=change.status,
            previous_status=change.previous_status,
            phone_number=change.phone_number,
            last_error=change.last_error,
        ),
        user_id,
        id=deterministic_id(user_id, "status", change.status, str(change.reported_at_ms)),
        session=session_name_for(user_id),
        correlation_id=correlation_id,
        occurred_at=datetime.fromtimestamp(change.reported_at_ms / 1000, UTC),
    )


@dataclass
class StatusRecorder:
    store: StatusStore
    events: EventPublisher
    clock: Callable[[], datetime]

    async def apply(
        self, user_id: str, decide: Callable[[SessionState], ReportDecision]
    ) -> tuple[SessionState, ReportDecision]:
        """Read, decide, compare-and-set; again if someone wrote in between. Answers (previous, decision)."""
        for _ in range(CAS_ATTEMPTS):
            previous = await self.store.state(user_id)
            decision = decide(previous)
            if not decision.apply or await self.store.apply_report(user_id, previous, decision, self.clock()):
                return previous, decision
        raise StatusConflict(f"status of {user_id} kept changing under us")

    async def announce(self, user_id: str, change: StatusChange, correlation_id: str | None) -> None:
        """Publish `session.status_changed` (raises BrokerUnavailable)."""
        await self.events.publish(status_changed_envelope(user_id, change, correlation_id))

    async def observe(
        self,
        user_id: str,
        status: SessionStatus,
        *,
        phone_number: str | None = None,
        error: str | None = None,
        correlation_id: str | None = None,
    ) -> StatusChange | None:
        """Record a status the orchestrator saw itself; announce it if it is a change."""
        observed_at_ms = int(self.clock().timestamp() * 1000)
        _, decision = await self.apply(
            user_id,
            lambda state: decide_observation(state, status, observed_at_ms, phone_number=phone_number, error=error),
        )
        change = decision.change
        if change is None:
            return None
        STATUS_CHANGES.labels(change.status).inc()
        log.info("status of %s observed: %s -> %s", user_id, change.previous_status, change.status)
        try:
            await self.announce(user_id, change, correlation_id)
        except BrokerUnavailable as exc:
            # The registry holds it; subscribers miss this one change (observations are not redelivered).
            log.warning("session.status_changed of %s not published: %s", user_id, exc)
        return change
