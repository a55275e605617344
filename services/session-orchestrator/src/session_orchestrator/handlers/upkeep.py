"""The upkeep commands, applied by the replica that drives the user (they come through the user's
partition, in order with the user's own commands): stop an idle session, reconcile with WAHA.

Both decide again from fresh data when they run: whoever sent them (any replica's idle sweep or
start-up reconciliation) may have looked a while ago, and several replicas may send the same one.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet_shared.contracts import Envelope, Reply
from fleet_shared.ids import session_name_for

from ..adapters.ports import SessionRecords, Waha, WahaNotFound
from ..domain.reconciliation import Repair, is_idle, observed_status, owner_of, phone_of, repair_for, waha_status_of
from ..domain.session_config import WebhookTarget, config_is_current, session_config
from ..domain.statuses import DESIRED_STOPPED
from ..metrics import IDLE_STOPS, RECONFIGURED, REPAIRS
from .bring_up import ensure_running
from .statuses import StatusRecorder

log = logging.getLogger(__name__)

LOST_SESSION_ERROR = "WAHA lost this session and its link: scan a new QR code"


@dataclass
class UpkeepCommands:
    records: SessionRecords
    waha: Waha
    recorder: StatusRecorder
    webhook: WebhookTarget
    idle_timeout: timedelta
    clock: Callable[[], datetime]

    async def idle_stop(self, env: Envelope, deadline: float) -> Reply:
        """Stop (never log out) a session nobody used for `idle_timeout`; the next start needs no QR."""
        user_id = env.user_id
        doc = await self.records.get(user_id)
        now = self.clock()
        if doc is None or not is_idle(doc.get("lastActivity"), now, self.idle_timeout):
            return Reply.success({"stopped": False, "reason": "active"})
        if doc.get("desired") == DESIRED_STOPPED:
            return Reply.success({"stopped": False, "reason": "already stopped"})
        try:
            await self.waha.session_action(session_name_for(user_id), "stop", deadline=deadline)
        except WahaNotFound:
            pass  # nothing runs; the registry learns STOPPED from reconciliation or never needed to
        # Not activity: `lastActivity` stays, so the session is idle until someone uses it again.
        await self.records.set_desired(user_id, DESIRED_STOPPED, now, idle=True)
        IDLE_STOPS.inc()
        log.info("stopped the session of %s: idle since %s", user_id, doc.get("lastActivity"))
        return Reply.success({"stopped": True})

    async def reconcile(self, env: Envelope, deadline: float) -> Reply:
        """Repair the difference between the registry and what WAHA has now (`recovery.repair_for`)."""
        user_id = env.user_id
        name = session_name_for(user_id)
        correlation_id = env.correlation_id or env.id
        doc = await self.records.get(user_id)
        try:
            info: dict | None = await self.waha.get_session(name, deadline=deadline)
        except WahaNotFound:
            info = None
        if info is not None and owner_of(info) != user_id:
            # A session by this user's name that does not say it is theirs: not ours to repair.
            log.warning("not reconciling %s: WAHA's %s belongs to someone else (metadata %r)", user_id, name,
                        (info.get("config") or {}).get("metadata"))
            return Reply.success({"repair": Repair.NOTHING.value})
        waha = waha_status_of(info) if info is not None else None
        repair = repair_for(doc.get("status") if doc else None, doc.get("desired") if doc else None, waha)
        REPAIRS.labels(repair.value).inc()
        if repair is Repair.NOTHING:
            return Reply.success({"repair": repair.value})
        log.info("reconciling %s: registry %s, WAHA %s -> %s", user_id, doc and doc.get("status"), waha, repair.value)
        if repair is Repair.ADOPT:
            await self.records.ensure_record(user_id, self.clock())
        if repair in (Repair.ADOPT, Repair.OBSERVE):
            await self.recorder.observe(
                user_id, observed_status(waha), phone_number=phone_of(info), correlation_id=correlation_id
            )
        elif repair is Repair.START:
            # It held a slot before WAHA lost it: no admission. A linked session comes back WORKING
            # by itself; one WAHA forgot altogether is created again and needs a new QR.
            config = session_config(user_id, self.webhook)
            status = await ensure_running(self.waha, name, config, deadline=deadline)
            if info is None:
                await self.records.forget_phone(user_id, self.clock())
            await self.recorder.observe(
                user_id, status, error=LOST_SESSION_ERROR if info is None else None, correlation_id=correlation_id
            )
        return Reply.success({"repair": repair.value})

    async def reconfigure(self, env: Envelope, deadline: float) -> Reply:
        """Give the user's WAHA session the current config, if it has another (`session.reconfigure`)."""
        user_id = env.user_id
        name = session_name_for(user_id)
        try:
            info = await self.waha.get_session(name, deadline=deadline)
        except WahaNotFound:
            return Reply.success({"reconfigured": False, "reason": "no session"})
        desired = session_config(user_id, self.webhook)
        if owner_of(info) != user_id:
            return Reply.success({"reconfigured": False, "reason": "not this user's"})
        if config_is_current(info.get("config"), desired):
            return Reply.success({"reconfigured": False, "reason": "current"})
        await self.waha.update_session(name, desired, deadline=deadline)
        RECONFIGURED.inc()
        log.info("gave WAHA session %s the current config (WAHA restarts it, keeping its pairing)", name)
        return Reply.success({"reconfigured": True})
