"""One function per command, query and report; each returns the `Reply` to answer (None for reports).

Errors become replies here, never crashes: WAHA unavailable -> 503 `waha_unavailable` (and the
registry's lastError; a session being brought up is then FAILED), the session limit -> 429
`session_limit_reached`, WAHA refusing -> a 4xx/5xx saying why, anything unexpected -> 500.
Only reports may raise (`Retry`) so the broker delivers them again after a transient failure.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, Reply, deterministic_id, envelope, utcnow
from fleet_shared.contracts.commands import SendText, SentView
from fleet_shared.contracts.events import MessageSent, SessionQrUpdated, SessionStatusReported
from fleet_shared.ids import session_name_for

from .admin import AdminQueries
from .domain import (
    DESIRED_RUNNING,
    DESIRED_STOPPED,
    FAILED,
    RUNNING,
    SCAN_QR_CODE,
    SOURCE_ORCHESTRATOR,
    STOPPED,
    WORKING,
    SessionStatus,
    StatusReport,
    UnknownStatus,
    decide_report,
    normalize_status,
)
from .lifecycle import WebhookTarget, ensure_running, session_config, wait_for_qr
from .limits import Admission, SessionLimitReached
from .metrics import STALE_REPORTS, STATUS_CHANGES
from .registry import SessionRegistry
from .repairs import Repairs
from .sends import Sending, SendLedger, fingerprint, settle
from .statuses import EventPublisher, StatusConflict, StatusRecorder
from .waha_client import (
    WahaBadResponse,
    WahaClient,
    WahaNotFound,
    WahaRejected,
    WahaUnavailable,
)

log = logging.getLogger(__name__)

DEFAULT_ACK = 1  # SERVER: WAHA took the message
REPORT_BUDGET = 5.0  # seconds a status report may spend on WAHA (fetching a rotated QR)
# Commands that bring a session up: WAHA still unreachable after the retries makes the session FAILED.
BRING_UP = frozenset({"session.start", "session.qr", "session.restart"})


class Retry(Exception):
    """A transient failure while handling a report: let the broker deliver it again."""


@dataclass
class Handlers:
    registry: SessionRegistry
    sends: SendLedger
    waha: WahaClient
    events: EventPublisher
    webhook: WebhookTarget
    qr_poll_interval: float = 0.25
    clock: Callable[[], datetime] = field(default=utcnow)
    admission: Admission | None = None  # None: no session limit
    idle_timeout: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        self.recorder = StatusRecorder(self.registry, self.events, self.clock)
        self.repairs = Repairs(
            registry=self.registry,
            waha=self.waha,
            recorder=self.recorder,
            webhook=self.webhook,
            idle_timeout=self.idle_timeout,
            clock=self.clock,
        )
        self.admin = AdminQueries(self.registry, self.admission.max_sessions if self.admission else None)

    # ---- entry points --------------------------------------------------------------------------

    async def command(self, env: Envelope, deadline: float) -> Reply:
        """A command with a reply: never raises."""
        handler = self._commands().get(env.type)
        if handler is None:
            return Reply.failure("unsupported", f"{env.type} is not a command of the session orchestrator", 400)
        try:
            return await handler(env, deadline)
        except SessionLimitReached as exc:
            log.warning("%s for %s refused: %s", env.type, env.user_id, exc)
            return Reply.failure(
                "session_limit_reached",
                f"at most {exc.limit} WhatsApp sessions may run at once; try again later",
                429,
            )
        except WahaUnavailable as exc:
            log.warning("%s for %s: %s", env.type, env.user_id, exc.message)
            await self._note_error(env.user_id, exc.message)
            if env.type in BRING_UP:
                await self._observe_failure(env, exc.message)
            return Reply.failure("waha_unavailable", "WhatsApp (WAHA) is unavailable, retry later", 503)
        except WahaNotFound as exc:
            return Reply.failure("session_not_found", exc.message, 404)
        except WahaRejected as exc:
            log.warning("%s for %s rejected: %s", env.type, env.user_id, exc.message)
            await self._note_error(env.user_id, exc.message)
            if exc.status in (401, 403):
                return Reply.failure("waha_auth_failed", "WAHA refused the orchestrator's API key", 502)
            return Reply.failure("waha_rejected", exc.message, 422)
        except WahaBadResponse as exc:
            log.error("%s for %s: %s (body %r)", env.type, env.user_id, exc.message, exc.body)
            await self._note_error(env.user_id, exc.message)
            return Reply.failure("waha_bad_response", exc.message, 502)
        except PyMongoError as exc:
            log.error("%s for %s: database error %r", env.type, env.user_id, exc)
            return Reply.failure("database_unavailable", "the session registry is unavailable, retry later", 503)
        except Exception:
            log.exception("%s for %s failed", env.type, env.user_id)
            return Reply.failure("internal_error", "internal error", 500)

    async def query(self, env: Envelope) -> Reply:
        """A query (never activity): the user's own status, or an operator's read."""
        try:
            if env.type == "session.get":
                return Reply.success(await self.registry.view(env.user_id))
            if env.type in self.admin.TYPES:
                return await self.admin.answer(env)
            return Reply.failure("unsupported", f"{env.type} is not a query of the session orchestrator", 400)
        except PyMongoError as exc:
            log.error("%s for %s: database error %r", env.type, env.user_id, exc)
            return Reply.failure("database_unavailable", "the session registry is unavailable, retry later", 503)
        except Exception:
            log.exception("%s for %s failed", env.type, env.user_id)
            return Reply.failure("internal_error", "internal error", 500)

    def _commands(self) -> dict[str, Callable[[Envelope, float], Awaitable[Reply]]]:
        return {
            "session.start": self.start,
            "session.stop": self.stop,
            "session.restart": self.restart,
            "session.logout": self.logout,
            "session.qr": self.qr,
            "message.send": self.send,
            "session.idle_stop": self.repairs.idle_stop,
            "session.reconcile": self.repairs.reconcile,
        }

    async def _note_error(self, user_id: str, message: str) -> None:
        try:
            await self.registry.record_error(user_id, message, self.clock())
        except PyMongoError as exc:
            log.warning("could not record the error of %s: %r", user_id, exc)

    async def _observe_failure(self, env: Envelope, message: str) -> None:
        """WAHA stayed unreachable while bringing the session up: it is FAILED, and says why."""
        try:
            await self.recorder.observe(env.user_id, FAILED, error=message, correlation_id=env.correlation_id or env.id)
        except (PyMongoError, StatusConflict) as exc:
            log.warning("could not record %s as FAILED: %r", env.user_id, exc)

    async def _admit(self, user_id: str) -> None:
        if self.admission is not None:
            await self.admission.admit(user_id)

    # ---- session lifecycle ---------------------------------------------------------------------

    async def _ensure(self, user_id: str, deadline: float, correlation_id: str | None = None) -> SessionStatus:
        doc = await self.registry.touch(user_id, self.clock(), desired=DESIRED_RUNNING)
        config = session_config(user_id, self.webhook)
        status = await ensure_running(
            self.waha, session_name_for(user_id), config, deadline=deadline, admit=lambda: self._admit(user_id)
        )
        await self._clear_error(user_id, doc)
        await self._correct_own_observation(user_id, doc, status, correlation_id)
        return status

    async def _clear_error(self, user_id: str, doc: dict) -> None:
        """After a success: the last error is history. `doc`: the record as this command found it;
        nothing else writes this user's record while their command runs (one at a time), so a
        record without an error needs no write."""
        if doc.get("lastError") is not None:
            await self.registry.clear_error(user_id, self.clock())

    async def _correct_own_observation(
        self, user_id: str, doc: dict, status: SessionStatus, correlation_id: str | None
    ) -> None:
        """If the registry's status is one we inferred ourselves (WAHA unreachable: FAILED) and WAHA
        now says otherwise, WAHA's word replaces it (a WORKING session sends no webhook to fix it)."""
        last_change = doc.get("lastChange") or {}
        if last_change.get("source") == SOURCE_ORCHESTRATOR and doc.get("status") != status:
            await self.recorder.observe(user_id, status, correlation_id=correlation_id)

    async def start(self, env: Envelope, deadline: float) -> Reply:
        return Reply.success({"status": await self._ensure(env.user_id, deadline, env.correlation_id or env.id)})

    async def qr(self, env: Envelope, deadline: float) -> Reply:
        status = await self._ensure(env.user_id, deadline, env.correlation_id or env.id)
        view = await wait_for_qr(
            self.waha, session_name_for(env.user_id), status, deadline=deadline, poll_interval=self.qr_poll_interval
        )
        return Reply.success(view)

    async def stop(self, env: Envelope, deadline: float) -> Reply:
        """Stop, keeping the phone linked: the next start needs no QR."""
        await self.registry.touch(env.user_id, self.clock(), desired=DESIRED_STOPPED)
        try:
            info = await self.waha.session_action(session_name_for(env.user_id), "stop", deadline=deadline)
            status = normalize_status(info["status"])
        except WahaNotFound:
            status = STOPPED  # nothing to stop
        return Reply.success({"status": status})

    async def restart(self, env: Envelope, deadline: float) -> Reply:
        name = session_name_for(env.user_id)
        doc = await self.registry.touch(env.user_id, self.clock(), desired=DESIRED_RUNNING)
        correlation_id = env.correlation_id or env.id
        try:
            current = normalize_status((await self.waha.get_session(name, deadline=deadline))["status"])
        except WahaNotFound:
            # never created: restarting means starting
            return Reply.success({"status": await self._ensure(env.user_id, deadline, correlation_id)})
        if current not in RUNNING:
            await self._admit(env.user_id)  # a stopped or FAILED session is about to run again
        info = await self.waha.session_action(name, "restart", deadline=deadline)
        status = normalize_status(info["status"])
        await self._clear_error(env.user_id, doc)
        await self._correct_own_observation(env.user_id, doc, status, correlation_id)
        return Reply.success({"status": status})

    async def logout(self, env: Envelope, deadline: float) -> Reply:
        await self.registry.touch(env.user_id, self.clock())
        try:
            info = await self.waha.session_action(session_name_for(env.user_id), "logout", deadline=deadline)
            status = normalize_status(info["status"])
        except WahaNotFound:
            status = STOPPED  # nothing linked
        await self.registry.forget_phone(env.user_id, self.clock())
        return Reply.success({"status": status})

    # ---- sending -------------------------------------------------------------------------------

    async def send(self, env: Envelope, deadline: float) -> Reply:
        # The id the message will have, asked of WAHA while the registry is written: when it is
        # there by the time of the claim, the claim records it (and that WAHA may be called from
        # now on) in the same write. Nothing waits for it unless the send needs it.
        next_id = asyncio.create_task(self.waha.new_message_id(session_name_for(env.user_id), deadline=deadline))
        try:
            return await self._send(env, deadline, next_id)
        finally:
            if not next_id.done():
                next_id.cancel()  # not needed (not WORKING, a repeat, or the registry failed)
            elif not next_id.cancelled():
                next_id.exception()  # looked at: a failure nobody needed is not logged as lost

    async def _send(self, env: Envelope, deadline: float, next_id: asyncio.Task[str]) -> Reply:
        user_id = env.user_id
        command: SendText = env.data
        session = session_name_for(user_id)
        loop = asyncio.get_running_loop()
        doc = await self.registry.touch(user_id, self.clock())
        if doc.get("status") != WORKING:
            return _not_working(doc.get("status") or STOPPED)
        # Every send is claimed before WAHA's sendText, by the client's Idempotency-Key or else by
        # the command's id, so neither a client retry nor a redelivery sends a message twice.
        key = f"key:{command.idempotency_key}" if command.idempotency_key else f"cmd:{env.id}"
        ready = next_id.done() and not next_id.cancelled() and next_id.exception() is None
        sending = Sending(next_id.result(), deadline - loop.time()) if ready else None
        claim = await self.sends.claim(
            user_id, key, fingerprint(command.chat_id, command.text, command.reply_to), env.id, self.clock(),
            sending=sending,
        )
        if claim.outcome == "done":
            return Reply.success(claim.result)
        if claim.outcome == "mismatch":
            return Reply.failure(
                "idempotency_key_reused", "this Idempotency-Key was already used for a different message", 422
            )
        message_id = claim.message_id
        sent = None
        if claim.outcome == "pending":
            # A crash or timeout between WAHA's sendText and the result: did the message go out?
            found = await self.waha.find_sent(session, command.chat_id, message_id, deadline=deadline) if message_id else None
            verdict = settle(claim, found is not None, self.clock())
            if verdict == "unknown":
                return Reply.failure(
                    "send_pending",
                    "a send with this Idempotency-Key is in progress or its outcome is unknown; retry later",
                    409,
                )
            sent = found
        if sent is None:
            try:
                if claim.outcome == "claimed" and sending is not None:
                    message_id = sending.message_id  # recorded with the claim
                else:
                    message_id = message_id or await next_id  # WAHA's failure to give one is raised here
                    remaining = deadline - loop.time()
                    await self.sends.mark_sending(user_id, key, message_id, self.clock(), remaining)
                sent = await self.waha.send_text(
                    session, command.chat_id, command.text, command.reply_to, message_id=message_id, deadline=deadline
                )
            except WahaRejected as exc:
                await self.sends.release(user_id, key)
                if exc.status == 422:
                    return _not_working(exc.session_status or doc.get("status") or STOPPED)
                raise
            except WahaUnavailable as exc:
                if exc.not_done:
                    await self.sends.release(user_id, key)
                raise

        result = SentView(id=sent.id, chat_id=command.chat_id, timestamp=sent.timestamp).wire()
        await self.sends.complete(user_id, key, result, self.clock())
        await self._clear_error(user_id, doc)
        await self._publish_sent(env, doc.get("phoneNumber"), sent.id, sent.timestamp, sent.ack)
        return Reply.success(result)

    async def _publish_sent(self, env: Envelope, phone: str | None, message_id: str, timestamp: int, ack: int | None) -> None:
        command: SendText = env.data
        event = MessageSent(
            id=message_id,
            chat_id=command.chat_id,
            from_me=True,
            from_=f"{phone}@c.us" if phone else None,
            to=command.chat_id,
            body=command.text,
            type="chat",
            has_media=False,
            timestamp=timestamp,
            ack=ack if ack is not None else DEFAULT_ACK,
        )
        out = envelope(
            event,
            env.user_id,
            # Same id as webhook-ingest gives the `message.any` of this message: stored once.
            id=deterministic_id(env.user_id, "message", message_id),
            session=session_name_for(env.user_id),
            correlation_id=env.correlation_id or env.id,
            occurred_at=datetime.fromtimestamp(timestamp, UTC),
        )
        try:
            await self.events.publish(out)
        except BrokerUnavailable as exc:
            # The message went out; WAHA's own message.any webhook will record it all the same.
            log.warning("message.sent of %s not published: %s", env.user_id, exc)

    # ---- reports from WAHA ---------------------------------------------------------------------

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
        if decision.change is not None and (decision.apply or redelivered):
            change = decision.change
            if decision.apply:
                STATUS_CHANGES.labels(change.status).inc()
            try:
                await self.recorder.announce(user_id, change, env.correlation_id or env.id)
            except BrokerUnavailable as exc:
                raise Retry(str(exc)) from exc
        if decision.apply and status == SCAN_QR_CODE:
            await self._publish_qr(env)

    async def _publish_qr(self, env: Envelope) -> None:
        """A new QR to scan (each rotation is reported as SCAN_QR_CODE again): best effort."""
        loop = asyncio.get_running_loop()
        try:
            value = await self.waha.qr_value(session_name_for(env.user_id), deadline=loop.time() + REPORT_BUDGET)
            out = envelope(
                SessionQrUpdated(value=value),
                env.user_id,
                id=deterministic_id(env.user_id, "qr", value),
                session=session_name_for(env.user_id),
                correlation_id=env.correlation_id or env.id,
            )
            await self.events.publish(out)
        except (WahaUnavailable, WahaRejected, WahaNotFound, WahaBadResponse, BrokerUnavailable) as exc:
            log.info("no session.qr_updated for %s: %s", env.user_id, exc)


def _not_working(status: Any) -> Reply:
    return Reply.failure("session_not_working", f"the WhatsApp session is {status}, not WORKING", 409)


def reply_deadline(env: Envelope, now: float, request_timeout: timedelta, margin: timedelta, floor: float = 1.0) -> float:
    """When a reply must be on its way: the requester waits `request_timeout` from when it asked."""
    budget = (request_timeout - margin).total_seconds()
    age = (utcnow() - env.occurred_at).total_seconds()
    if age > 0:  # a clock behind ours is not a reason to wait longer
        budget -= age
    return now + max(floor, budget)
