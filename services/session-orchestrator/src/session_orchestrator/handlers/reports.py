"""What webhook-ingest reports: WAHA's status of a session, and that a user's session is in use.

`session.status_reported` is applied only if newer than what the registry holds (compare-and-set
on `lastReportedAtMs`, `domain.statuses.decide_report`); a change is persisted, then
`session.status_changed` published, then the delivery acked, so a redelivered report re-publishes
the same event. Each applied SCAN_QR_CODE also publishes `session.qr_updated` (best effort).
`session.active` moves the user's idle clock forward (never backwards). Both raise `Retry` when the
registry or the broker failed, so the broker delivers them again.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import SessionQrUpdated, SessionStatusReported
from fleet_shared.ids import session_name_for

from ..adapters.ports import EventPublisher, SessionRecords, Waha, WahaError
from ..domain.statuses import SCAN_QR_CODE, WORKING, StatusReport, UnknownStatus, decide_report, normalize_status
from ..metrics import ACTIVITY, STALE_REPORTS, STATUS_CHANGES
from .errors import Retry
from .statuses import StatusConflict, StatusRecorder

log = logging.getLogger(__name__)

REPORT_BUDGET = 5.0  # seconds a status report may spend on WAHA (fetching a rotated QR)


@dataclass
class Reports:
    records: SessionRecords
    recorder: StatusRecorder
    waha: Waha
    events: EventPublisher
    clock: Callable[[], datetime]
    # Called when a session became WORKING after a new pairing (the history import starts).
    on_paired: Callable[[str], Awaitable[None]] | None = None

    async def status_reported(self, env: Envelope, *, redelivered: bool) -> None:
        """WAHA's `session.status` webhook, via webhook-ingest: the truth, if it is the newest word."""
        user_id = env.user_id
        data: SessionStatusReported = env.data
        try:
            status = normalize_status(data.status)
        except UnknownStatus as exc:
            log.warning("ignoring status report of %s: %s", user_id, exc)
            return
        report = StatusReport(status=status, reported_at_ms=data.reported_at_ms, phone_number=data.phone_number)
        try:
            previous, decision = await self.recorder.apply(user_id, lambda state: decide_report(state, report))
        except StatusConflict as exc:
            raise Retry(str(exc)) from exc
        except PyMongoError as exc:
            raise Retry(f"registry unavailable: {exc!r}") from exc

        if not decision.apply and not decision.replay:
            STALE_REPORTS.inc()
            log.info("stale or repeated status report of %s (%s at %d) ignored", user_id, status, data.reported_at_ms)
            return
        if decision.unexpected:
            log.warning("status of %s went %s -> %s (a report was probably lost)", user_id, previous.status, status)
        change = decision.change
        if decision.apply and change is not None and change.status == WORKING and change.previous_status == SCAN_QR_CODE:
            # Before the change is announced: whoever hears of WORKING (a gateway's status read
            # model among them) then reads the import as running, not as idle.
            await self._paired(user_id)
        if decision.change is not None and (decision.apply or redelivered):
            if decision.apply:
                STATUS_CHANGES.labels(decision.change.status).inc()
            try:
                await self.recorder.announce(user_id, decision.change, env.correlation_id or env.id)
            except BrokerUnavailable as exc:
                raise Retry(str(exc)) from exc
        if decision.apply and status == SCAN_QR_CODE:
            await self._publish_qr(env)

    async def _paired(self, user_id: str) -> None:
        if self.on_paired is None:
            return
        try:
            await self.on_paired(user_id)
        except PyMongoError as exc:
            # The status is recorded; the import can be asked for again (POST /history/import).
            log.warning("history import of %s not started: %r", user_id, exc)

    async def _publish_qr(self, env: Envelope) -> None:
        """A new QR to scan (each rotation is reported as SCAN_QR_CODE again): best effort."""
        deadline = asyncio.get_running_loop().time() + REPORT_BUDGET
        try:
            value = await self.waha.qr_value(session_name_for(env.user_id), deadline=deadline)
            out = envelope(
                SessionQrUpdated(value=value),
                env.user_id,
                id=deterministic_id(env.user_id, "qr", value),
                session=session_name_for(env.user_id),
                correlation_id=env.correlation_id or env.id,
            )
            await self.events.publish(out)
        except (WahaError, BrokerUnavailable) as exc:
            log.info("no session.qr_updated for %s: %s", env.user_id, exc)

    async def active(self, env: Envelope) -> None:
        """Messages to or from the user (`session.active`): their idle clock starts again."""
        try:
            # A message from the future (a phone's clock) counts as now.
            await self.records.note_activity(env.user_id, min(env.occurred_at, self.clock()))
        except PyMongoError as exc:
            raise Retry(f"registry unavailable: {exc!r}") from exc
        ACTIVITY.inc()
