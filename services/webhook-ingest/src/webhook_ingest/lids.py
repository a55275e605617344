"""Asking for the phone number of people WhatsApp names by a hidden `@lid` id.

A message whose sender is a `@lid` makes ingest publish `contact.lid_seen`, once per (user, lid)
this process remembers: the orchestrator asks WAHA (`/api/{session}/lids/{lid}`) and publishes
the pair, which the persister uses to give such messages their `fromPhone`. A process that
restarts, or forgets (bounded memory), asks again: one message more, never a wrong answer.
"""

from fleet_shared.contracts import Envelope, deterministic_id, envelope, utcnow
from fleet_shared.contracts.events import ContactLidSeen, MessageReceived
from fleet_shared.recent import RecentTimes

MEMORY = 100_000  # (user, lid) pairs remembered


class LidsSeen:
    def __init__(self, memory: int = MEMORY) -> None:
        self._seen = RecentTimes(memory)

    def due(self, event: Envelope) -> Envelope | None:
        """The `contact.lid_seen` to publish after `event`, if it is a message from a lid not asked for yet."""
        m = event.data
        if not isinstance(m, MessageReceived) or m.from_lid is None or m.from_phone is not None:
            return None
        if self._seen.get(f"{event.user_id} {m.from_lid}") is not None:
            return None
        return envelope(
            ContactLidSeen(lid=m.from_lid), event.user_id, id=deterministic_id(event.user_id, "lid-seen", m.from_lid),
            session=event.session, correlation_id=event.correlation_id,
        )

    def published(self, report: Envelope) -> None:
        self._seen.note(f"{report.user_id} {report.data.lid}", utcnow())
