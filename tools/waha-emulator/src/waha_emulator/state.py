"""Sessions and their status machine (reference section 2.5), QR rotation, waits on status."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .config import EmulatorConfig
from .errors import NotFound, TextError, session_does_not_exist, status_not_expected
from .groups import Group
from .messages import now_ms
from .persistence import StateFile
from .qr import new_qr_value
from .store import MessageStore, Record

log = logging.getLogger("waha_emulator")

HISTORY_KEEP = 100
SENT_KEEP = 10_000
ACTIONS_KEEP = 10_000


class Status(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    SCAN_QR_CODE = "SCAN_QR_CODE"
    WORKING = "WORKING"
    FAILED = "FAILED"


class StateConflict(Exception):
    """A control-API action that the session's current status does not allow (409)."""

    def __init__(self, session: Session, expected: list[str]) -> None:
        super().__init__(f"session {session.name!r} is {session.status}, expected {expected}")
        self.body = {
            "error": f"Session status is {session.status}, expected one of {expected}",
            "session": session.name,
            "status": str(session.status),
            "expected": expected,
        }


def default_phone(name: str) -> str:
    digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:10]
    return "1" + digits


@dataclass(eq=False)
class Session:
    name: str
    config: dict[str, Any]
    status: Status = Status.STOPPED
    linked_me: dict[str, Any] | None = None  # kept across stop/start; cleared by logout/disconnect
    history: list[dict[str, Any]] = field(default_factory=list)
    qr_value: str | None = None
    qr_index: int = 0
    activity: int | None = None
    lifecycle: asyncio.Task | None = None
    side_tasks: set[asyncio.Task] = field(default_factory=set)
    store: MessageStore = field(default_factory=MessageStore)
    # Sends through the API (what was asked, the message made), and the user's other actions.
    sent: deque[tuple[dict[str, Any], Record]] = field(default_factory=lambda: deque(maxlen=SENT_KEEP))
    actions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ACTIONS_KEEP))
    presence: str | None = None  # set by POST /api/{session}/presence
    groups: dict[str, Group] = field(default_factory=dict)  # the account's groups (WhatsApp's server side)
    pairing: tuple[str, str] | None = None  # the last pairing code asked for, and its phone number

    @property
    def linked(self) -> bool:
        return self.linked_me is not None

    @property
    def running(self) -> bool:
        return self.status != Status.STOPPED

    @property
    def me(self) -> dict[str, Any] | None:
        # The engine only knows who it is while connected.
        return dict(self.linked_me) if self.linked_me and self.status == Status.WORKING else None

    def info(self, engine: str, expand_apps: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": str(self.status),
            "config": self.config,
            "me": self.me,
            "presence": (self.presence or "online") if self.status == Status.WORKING else None,
            "timestamps": {"activity": self.activity},
            "engine": {"engine": engine},
            "assignedWorker": None,
        }
        if expand_apps:
            out["apps"] = []
        return out

    def store_enabled(self, default: bool) -> bool:
        """config.noweb.store.enabled, or `default` when the config does not say."""
        noweb = self.config.get("noweb")
        store = noweb.get("store") if isinstance(noweb, dict) else None
        enabled = store.get("enabled") if isinstance(store, dict) else None
        return enabled if isinstance(enabled, bool) else default

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "me": self.linked_me, "running": self.running}


Emit = Callable[[Session, str, Any], Any]


class SessionManager:
    def __init__(self, config: EmulatorConfig, emit: Emit, store: StateFile) -> None:
        self.config = config
        self._emit = emit
        self._store = store
        self.sessions: dict[str, Session] = {}
        self._changed = asyncio.Event()
        # Called when a session is paired anew, before it turns WORKING (history sync happens then).
        self.on_linked: Callable[[Session], None] | None = None

    # -- lookups and waits ---------------------------------------------------------------

    def get(self, name: str) -> Session | None:
        return self.sessions.get(name)

    def require(self, name: str) -> Session:
        s = self.sessions.get(name)
        if s is None:
            raise NotFound("Session not found")
        return s

    def list(self, include_stopped: bool) -> list[Session]:
        return [s for s in self.sessions.values() if include_stopped or s.status != Status.STOPPED]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return True

    async def session_in(self, name: str, expected: Iterable[Status], timeout: float,
                         missing: Callable[[str], Exception]) -> Session:
        """Wait (bounded) until the session has one of the statuses, else raise WAHA's 422."""
        expected = [Status(e) for e in expected]

        def ok() -> bool:
            s = self.sessions.get(name)
            return s is not None and s.status in expected

        await self.wait_until(ok, timeout)
        s = self.sessions.get(name)
        if s is None:
            raise missing(name)
        if s.status not in expected:
            raise status_not_expected(name, str(s.status), [str(e) for e in expected])
        return s

    async def working(self, name: str) -> Session:
        return await self.session_in(name, [Status.WORKING], self.config.send_wait_timeout, session_does_not_exist)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def emit(self, s: Session, event: str, payload: Any) -> None:
        self._emit(s, event, payload)

    def persist(self) -> None:
        try:
            self._store.save([s.record() for s in self.sessions.values()])
        except OSError as exc:
            log.error("cannot write state file: %s", exc)

    # -- status machine ------------------------------------------------------------------

    def _set_status(self, s: Session, status: Status) -> None:
        # SCAN_QR_CODE is re-emitted on each QR rotation; other repeats (e.g. WORKING) are suppressed.
        if status == s.status and status != Status.SCAN_QR_CODE:
            return
        s.status = status
        ts = now_ms()
        s.history.append({"status": str(status), "timestamp": ts})
        del s.history[:-HISTORY_KEEP]
        s.activity = ts
        if status != Status.SCAN_QR_CODE:
            s.qr_value = None
            s.pairing = None
        log.info("session %s -> %s", s.name, status)
        self._notify()
        self.emit(s, "session.status", {
            "name": s.name,
            "status": str(status),
            "statuses": [dict(h) for h in s.history[-3:]],
            "data": None,
        })

    async def _run(self, s: Session) -> None:
        cfg = self.config
        await asyncio.sleep(cfg.starting_delay)
        if s.linked:
            self._set_status(s, Status.WORKING)
            return
        for i in range(cfg.qr_count):
            s.qr_index = i + 1
            s.qr_value = new_qr_value(s.name, i + 1)
            self._set_status(s, Status.SCAN_QR_CODE)
            await asyncio.sleep(cfg.qr_first_lifetime if i == 0 else cfg.qr_next_lifetime)
        self._set_status(s, Status.FAILED)

    def _cancel_tasks(self, s: Session) -> None:
        current = asyncio.current_task()
        for task in [s.lifecycle, *s.side_tasks]:
            if task is not None and task is not current and not task.done():
                task.cancel()
        s.lifecycle = None
        s.side_tasks.clear()

    def spawn(self, s: Session, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        s.side_tasks.add(task)
        task.add_done_callback(s.side_tasks.discard)
        return task

    def _start(self, s: Session) -> None:
        if s.running:
            return  # idempotent; FAILED also counts as running (restart is needed)
        s.presence = None
        if not s.store_enabled(self.config.store_default):
            s.store.clear()  # NOWEB without the store: a new in-memory store each time the engine starts
        self._set_status(s, Status.STARTING)
        s.lifecycle = asyncio.get_running_loop().create_task(self._run(s))

    def _stop(self, s: Session) -> None:
        self._cancel_tasks(s)
        if s.running:
            self._set_status(s, Status.STOPPED)

    # -- WAHA API operations -------------------------------------------------------------

    def create(self, name: str, config: dict[str, Any], start: bool) -> Session:
        if name in self.sessions:
            raise TextError(422, f"Session '{name}' already exists. Use PUT to update it.")
        s = Session(name=name, config=config, activity=now_ms())
        self.sessions[name] = s
        if start:
            self._start(s)
        self.persist()
        self._notify()
        return s

    def update(self, name: str, config: dict[str, Any]) -> Session:
        s = self.require(name)
        was_running = s.running
        if was_running:
            self._stop(s)
        s.config = config
        if was_running:
            self._start(s)
        self.persist()
        return s

    def delete(self, name: str) -> None:
        s = self.sessions.get(name)
        if s is None:
            return
        self._stop(s)
        s.linked_me = None
        del self.sessions[name]
        self.persist()
        self._notify()

    def start(self, name: str) -> Session:
        s = self.require(name)
        self._start(s)
        self.persist()
        return s

    def stop(self, name: str) -> Session:
        s = self.require(name)
        self._stop(s)
        self.persist()
        return s

    def restart(self, name: str) -> Session:
        s = self.require(name)
        self._stop(s)
        self._start(s)
        self.persist()
        return s

    def logout(self, name: str) -> Session:
        s = self.require(name)
        was_running = s.running
        self._stop(s)
        s.linked_me = None
        s.store.clear()
        s.groups.clear()
        if was_running:
            self._start(s)
        self.persist()
        return s

    # -- what the phone does (control API) -----------------------------------------------

    def scan(self, name: str, phone: str | None, push_name: str | None) -> Session:
        s = self.require(name)
        if s.status != Status.SCAN_QR_CODE:
            raise StateConflict(s, [str(Status.SCAN_QR_CODE)])
        return self.link(s, phone or default_phone(name), push_name or name)

    def link(self, s: Session, phone: str, push_name: str) -> Session:
        """The phone paired the session (QR scan or pairing code): WORKING as that account."""
        self._cancel_tasks(s)
        s.linked_me = {"id": f"{phone}@c.us", "pushName": push_name}
        if self.on_linked is not None:
            self.on_linked(s)
        self._set_status(s, Status.WORKING)
        self.persist()
        return s

    def disconnect(self, name: str) -> Session:
        s = self.require(name)
        self._cancel_tasks(s)
        s.linked_me = None
        if s.running:
            self._set_status(s, Status.FAILED)
        self.persist()
        return s

    # -- process lifetime ----------------------------------------------------------------

    def restore(self) -> None:
        """Load the state file; sessions that were running start again (WAHA_WORKER_RESTART_SESSIONS)."""
        for rec in self._store.load():
            config: dict[str, Any] = rec["config"] if isinstance(rec.get("config"), dict) else {}
            me: dict[str, Any] | None = rec["me"] if isinstance(rec.get("me"), dict) else None
            s = Session(name=rec["name"], config=config, linked_me=me)
            self.sessions[s.name] = s
            if rec.get("running") and self.config.restart_sessions:
                self._start(s)
        if self.sessions:
            log.info("restored %d session(s) from %s", len(self.sessions), self._store.path)

    async def shutdown(self) -> None:
        """Stop the timers without touching the saved state (running sessions come back on restart)."""
        tasks = []
        for s in self.sessions.values():
            tasks += [t for t in [s.lifecycle, *s.side_tasks] if t is not None]
            self._cancel_tasks(s)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def reset(self) -> None:
        await self.shutdown()
        self.sessions.clear()
        self.persist()
        self._notify()
