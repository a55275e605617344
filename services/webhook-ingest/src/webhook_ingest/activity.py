"""Telling the orchestrator that a user's session is in use, without one message per WhatsApp message.

The orchestrator stops sessions nobody used for SESSION_IDLE_TIMEOUT; messages to and from the
user are use. Instead of the orchestrator taking every message event (a quorum-queue delivery
and a consumer's work per message, for a clock that only needs minutes), ingest publishes one
`session.active` per user when a message arrives and the user's last report from this process is
older than ACTIVITY_REPORT_INTERVAL. A process that restarts, or forgets a user (bounded memory),
reports again at that user's next message: one message more, never one less.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from fleet_shared.contracts import Envelope, deterministic_id, envelope, utcnow
from fleet_shared.contracts.events import MessageReceived, MessageSent, SessionActive
from fleet_shared.recent import RecentTimes

ACTIVITY_EVENT_TYPES = frozenset({MessageReceived.TYPE, MessageSent.TYPE})
# Users whose last report this process remembers; ~200 bytes each.
MEMORY = 100_000


class ActivityReports:
    def __init__(self, interval: timedelta, memory: int = MEMORY, clock: Callable[[], datetime] = utcnow) -> None:
        self.interval = interval
        self._reported = RecentTimes(memory)
        self._clock = clock

    def due(self, event: Envelope) -> Envelope | None:
        """The `session.active` to publish ahead of `event`, if it is a message and the user's is due."""
        if event.type not in ACTIVITY_EVENT_TYPES:
            return None
        last = self._reported.get(event.user_id)
        due_after = None if last is None else last + self.interval
        if due_after is not None and event.occurred_at <= due_after:
            return None  # the common case, decided without reading the clock
        at = min(event.occurred_at, self._clock())  # a phone whose clock runs ahead must not silence the next reports
        if due_after is not None and at <= due_after:
            return None
        message_id = event.data.id
        return envelope(
            SessionActive(message_id=message_id),
            event.user_id,
            # A redelivered webhook republishes the same fact under the same id.
            id=deterministic_id(event.user_id, "active", message_id),
            session=event.session,
            correlation_id=event.correlation_id,
            occurred_at=at,
        )

    def published(self, report: Envelope) -> None:
        """`report` (from `due`) was confirmed by the broker."""
        self._reported.note(report.user_id, report.occurred_at)
