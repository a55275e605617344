"""The user's session commands: `session.start`, `.qr`, `.pairing_code`, `.stop`, `.restart`, `.logout`.

`start` / `qr`: WAHA's session is created if unknown, started if stopped, restarted if FAILED
(`bring_up.ensure_running`), taking a slot under MAX_SESSIONS first; `qr` then waits for the QR.
`stop` keeps the phone linked (the next start needs no QR); `logout` unlinks it. Stopping or
logging out a session WAHA does not know answers STOPPED; restarting one creates it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fleet_shared.contracts import Envelope, Reply
from fleet_shared.contracts.commands import PairingCodeView, RequestPairingCode
from fleet_shared.ids import session_name_for

from ..adapters.ports import SessionRecords, Waha, WahaNotFound, WahaRejected
from ..domain.session_config import WebhookTarget, session_config
from ..domain.statuses import (
    DESIRED_RUNNING,
    DESIRED_STOPPED,
    RUNNING,
    SCAN_QR_CODE,
    SOURCE_ORCHESTRATOR,
    STARTING,
    STOPPED,
    WORKING,
    SessionStatus,
    normalize_status,
)
from .admission import Admission
from .bring_up import ensure_running, wait_for_qr
from .statuses import StatusRecorder


@dataclass
class SessionCommands:
    records: SessionRecords
    waha: Waha
    recorder: StatusRecorder
    webhook: WebhookTarget
    clock: Callable[[], datetime]
    admission: Admission | None = None  # None: no session limit
    qr_poll_interval: float = 0.25

    async def start(self, env: Envelope, deadline: float) -> Reply:
        return Reply.success({"status": await self._ensure(env, deadline)})

    async def qr(self, env: Envelope, deadline: float) -> Reply:
        status = await self._ensure(env, deadline)
        view = await wait_for_qr(
            self.waha, session_name_for(env.user_id), status, deadline=deadline, poll_interval=self.qr_poll_interval
        )
        return Reply.success(view)

    async def pairing_code(self, env: Envelope, deadline: float) -> Reply:
        """A code to type on the phone instead of scanning the QR: only while the session asks for one."""
        command: RequestPairingCode = env.data
        name = session_name_for(env.user_id)
        await self.records.touch(env.user_id, self.clock())
        try:
            status = normalize_status((await self.waha.get_session(name, deadline=deadline))["status"])
        except WahaNotFound:
            return Reply.failure("session_not_found", "no session yet: start it first (POST /session/start)", 404)
        if status == WORKING:
            return Reply.failure("already_paired", "the session is WORKING: a phone is linked already", 409)
        if status not in (STARTING, SCAN_QR_CODE):
            return Reply.failure("no_pairing", f"the session is {status}: start it, then ask while it shows a QR", 409)
        try:
            code = await self.waha.request_code(name, command.phone_number, deadline=deadline)
        except WahaRejected as exc:
            if exc.status == 422:  # WAHA: "Can request code only in SCAN_QR_CODE status"
                return Reply.failure("no_pairing", exc.message, 409)
            raise
        return Reply.success(PairingCodeView(code=code))

    async def stop(self, env: Envelope, deadline: float) -> Reply:
        """Stop, keeping the phone linked: the next start needs no QR."""
        await self.records.touch(env.user_id, self.clock(), desired=DESIRED_STOPPED)
        return Reply.success({"status": await self._action(env.user_id, "stop", deadline)})

    async def restart(self, env: Envelope, deadline: float) -> Reply:
        name = session_name_for(env.user_id)
        doc = await self.records.touch(env.user_id, self.clock(), desired=DESIRED_RUNNING)
        try:
            current = normalize_status((await self.waha.get_session(name, deadline=deadline))["status"])
        except WahaNotFound:
            # never created: restarting means starting
            return Reply.success({"status": await self._ensure(env, deadline)})
        if current not in RUNNING:
            await self._admit(env.user_id)  # a stopped or FAILED session is about to run again
        status = normalize_status((await self.waha.session_action(name, "restart", deadline=deadline))["status"])
        await self._after_success(env, doc, status)
        return Reply.success({"status": status})

    async def logout(self, env: Envelope, deadline: float) -> Reply:
        await self.records.touch(env.user_id, self.clock())
        status = await self._action(env.user_id, "logout", deadline)
        await self.records.forget_phone(env.user_id, self.clock())
        return Reply.success({"status": status})

    async def _action(self, user_id: str, action: str, deadline: float) -> SessionStatus:
        """`stop` or `logout` in WAHA; a session WAHA does not know is STOPPED already."""
        try:
            info = await self.waha.session_action(session_name_for(user_id), action, deadline=deadline)
        except WahaNotFound:
            return STOPPED
        return normalize_status(info["status"])

    async def _ensure(self, env: Envelope, deadline: float) -> SessionStatus:
        doc = await self.records.touch(env.user_id, self.clock(), desired=DESIRED_RUNNING)
        config = session_config(env.user_id, self.webhook)
        status = await ensure_running(
            self.waha, session_name_for(env.user_id), config, deadline=deadline, admit=lambda: self._admit(env.user_id)
        )
        await self._after_success(env, doc, status)
        return status

    async def _admit(self, user_id: str) -> None:
        if self.admission is not None:
            await self.admission.admit(user_id)

    async def _after_success(self, env: Envelope, doc: dict, status: SessionStatus) -> None:
        """`doc`: the record as this command found it; nothing else writes this user's record while
        their command runs (one at a time), so a record without an error needs no write.

        If the registry's status is one we inferred ourselves (WAHA unreachable: FAILED) and WAHA now
        says otherwise, WAHA's word replaces it (a WORKING session sends no webhook to fix it)."""
        if doc.get("lastError") is not None:
            await self.records.clear_error(env.user_id, self.clock())
        last_change = doc.get("lastChange") or {}
        if last_change.get("source") == SOURCE_ORCHESTRATOR and doc.get("status") != status:
            await self.recorder.observe(env.user_id, status, correlation_id=env.correlation_id or env.id)
