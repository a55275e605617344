"""The unit tier: the orchestrator's handlers wired by `bootstrap()` to in-memory adapters.

No broker, no database, no HTTP: each fake keeps what the real adapter keeps, in a dict, and the
registry and ledger fakes pass the same contract tests as the MongoDB adapters
(`test_registry_contract.py`, `test_ledger_contract.py`), so a handler tested here behaves the
same on the real ones. The fakes are handed to tests through fixtures (test modules here cannot
import each other).
"""

import asyncio
import copy
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Contract, Envelope, Reply, envelope
from fleet_shared.contracts.commands import GetQr, SessionView
from fleet_shared.contracts.events import SessionStatusReported
from fleet_shared.contracts.media import MediaRef
from fleet_shared.ids import session_name_for
from fleet_shared.media import MediaNotFound
from fleet_shared.waha import serialized_id
from session_orchestrator.adapters.ports import (
    FileTooLarge,
    OutgoingFile,
    SentMessage,
    WahaNotFound,
    WahaRejected,
    WahaUnavailable,
)
from session_orchestrator.bootstrap import Orchestrator, bootstrap
from session_orchestrator.config import Settings
from session_orchestrator.domain.records import HISTORY_LENGTH, change_fields, state_of, view_of
from session_orchestrator.domain.sending import Claim, Sending, sending_until
from session_orchestrator.domain.session_config import WebhookTarget
from session_orchestrator.domain.statuses import (
    DESIRED_STOPPED,
    RUNNING,
    STATUSES,
    STOPPED,
    ReportDecision,
    SessionState,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WEBHOOK_URL = "http://ingest.test/webhooks/waha"
HMAC_KEY = "unit-hmac-key-0123456789abcdef"


class ManualClock:
    """The handlers' clock: moves only when a test moves it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


# ---- the registry and the ledger ------------------------------------------------------------


class MemoryRegistry:
    """`ports.SessionRegistry` in a dict, one record per user, shaped as `domain/records.py` says."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}
        self.fail_with: Exception | None = None  # raised by every call while set (MongoDB down)

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _upsert(self, user_id: str, now: datetime, set_: dict, on_insert: dict | None = None) -> dict:
        doc = self.docs.get(user_id)
        if doc is None:
            doc = self.docs[user_id] = {
                "userId": user_id, "status": STOPPED, "statusHistory": [], "lastReportedAtMs": None,
                "phoneNumber": None, "lastError": None, "createdAt": now, **(on_insert or {}),
            }
        doc.update({"session": session_name_for(user_id), "updatedAt": now, **set_})
        return copy.deepcopy(doc)

    async def get(self, user_id: str) -> dict | None:
        self._check()
        doc = self.docs.get(user_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def view(self, user_id: str) -> SessionView:
        return view_of(user_id, await self.get(user_id))

    async def state(self, user_id: str) -> SessionState:
        return state_of(await self.get(user_id))

    async def touch(self, user_id: str, now: datetime, *, desired: str | None = None) -> dict:
        self._check()
        return self._upsert(user_id, now, {"lastActivity": now, **({"desired": desired} if desired else {})})

    async def touch_send(self, user_id: str, now: datetime) -> dict:
        return await self.touch(user_id, now)

    async def record_error(self, user_id: str, message: str, now: datetime) -> None:
        self._check()
        self._upsert(user_id, now, {"lastError": message[:500]})

    async def clear_error(self, user_id: str, now: datetime) -> None:
        self._check()
        doc = self.docs.get(user_id)
        if doc is not None and doc.get("lastError") is not None:
            doc.update(lastError=None, updatedAt=now)

    async def forget_phone(self, user_id: str, now: datetime) -> None:
        self._check()
        self._upsert(user_id, now, {"phoneNumber": None})

    async def ensure_record(self, user_id: str, now: datetime) -> dict:
        self._check()
        return self._upsert(user_id, now, {}, on_insert={"lastActivity": now})

    async def set_desired(self, user_id: str, desired: str, now: datetime, *, idle: bool = False) -> None:
        self._check()
        self._upsert(user_id, now, {"desired": desired, **({"idleStoppedAt": now} if idle else {})})

    async def note_activity(self, user_id: str, at: datetime) -> bool:
        self._check()
        doc = self.docs.get(user_id)
        if doc is None:
            return False
        if doc.get("lastActivity") is None or doc["lastActivity"] < at:
            doc["lastActivity"] = at
        return True

    async def apply_report(self, user_id: str, previous: SessionState, decision: ReportDecision, now: datetime) -> bool:
        self._check()
        doc = self.docs.get(user_id)
        if doc is not None and (doc.get("lastReportedAtMs"), doc.get("status")) != (
            previous.last_reported_at_ms, previous.status
        ):
            return False  # someone applied another report since `previous` was read
        if doc is None:
            doc = self.docs[user_id] = {"userId": user_id, "createdAt": now, "statusHistory": []}
        new, change = decision.state, decision.change
        doc.update(
            session=session_name_for(user_id), status=new.status, phoneNumber=new.phone_number,
            lastError=new.last_error, lastReportedAtMs=new.last_reported_at_ms,
            lastChange=change_fields(change) if change else None, updatedAt=now,
        )
        doc.pop("admittedAt", None)
        if change is not None:
            entry = {"status": new.status, "at": now, "reportedAtMs": change.reported_at_ms, "source": change.source}
            doc["statusHistory"] = [*doc.get("statusHistory", []), entry][-HISTORY_LENGTH:]
        return True

    async def mark_admitted(self, user_id: str, now: datetime) -> None:
        self._check()
        self._upsert(user_id, now, {"admittedAt": now})

    def _holds_slot(self, doc: dict, admitted_since: datetime) -> bool:
        admitted = doc.get("admittedAt")
        return doc.get("status") in RUNNING or (admitted is not None and admitted > admitted_since)

    async def count_running(self, *, exclude: str | list[str], admitted_since: datetime) -> int:
        self._check()
        excluded = {exclude} if isinstance(exclude, str) else set(exclude)
        return sum(1 for u, d in self.docs.items() if u not in excluded and self._holds_slot(d, admitted_since))

    async def holding_slots(self, users: list[str], *, admitted_since: datetime) -> set[str]:
        self._check()
        return {u for u in users if u in self.docs and self._holds_slot(self.docs[u], admitted_since)}

    async def list_records(self, statuses: list[str] | None, limit: int) -> list[dict]:
        self._check()
        docs = [d for _, d in sorted(self.docs.items()) if statuses is None or d.get("status") in statuses]
        return copy.deepcopy(docs[:limit])

    async def count_by_status(self) -> dict[str, int]:
        self._check()
        return {s: sum(1 for d in self.docs.values() if d.get("status") == s) for s in STATUSES}

    async def idle_users(self, cutoff: datetime, limit: int) -> list[str]:
        self._check()
        idle = [
            d for d in self.docs.values()
            if d.get("status") != STOPPED and d.get("desired") != DESIRED_STOPPED
            and d.get("lastActivity") is not None and d["lastActivity"] < cutoff
        ]
        return [d["userId"] for d in sorted(idle, key=lambda d: d["lastActivity"])[:limit]]

    async def not_stopped(self) -> dict[str, tuple[str, str | None]]:
        self._check()
        return {u: (d["status"], d.get("desired")) for u, d in self.docs.items() if d.get("status") != STOPPED}


class MemoryLedger:
    """`ports.SendLedger` in a dict keyed by (user, key)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}

    async def claim(
        self, user_id: str, key: str, print_: str, command_id: str, now: datetime, *, sending: Sending | None = None
    ) -> Claim:
        doc = self.docs.get((user_id, key))
        if doc is None:
            self.docs[(user_id, key)] = {
                "fingerprint": print_, "commandId": command_id, "state": "pending", "result": None,
                "messageId": sending.message_id if sending else None, "sendingAt": now if sending else None,
                "sendingUntil": sending_until(now, sending.budget) if sending else None,
            }
            return Claim("claimed")
        if doc["fingerprint"] != print_:
            return Claim("mismatch")
        if doc["state"] == "done":
            return Claim("done", copy.deepcopy(doc["result"]))
        return Claim(
            "pending", message_id=doc["messageId"], sending_at=doc["sendingAt"], sending_until=doc["sendingUntil"]
        )

    async def mark_sending(self, user_id: str, key: str, message_id: str | None, now: datetime, budget: float) -> None:
        doc = self.docs.get((user_id, key))
        if doc is not None:
            doc.update(messageId=message_id, sendingAt=now, sendingUntil=sending_until(now, budget))

    async def complete(self, user_id: str, key: str, result: dict, now: datetime) -> None:
        doc = self.docs.get((user_id, key))
        if doc is not None:
            doc.update(state="done", result=copy.deepcopy(result))

    async def release(self, user_id: str, key: str) -> None:
        if self.docs.get((user_id, key), {}).get("state") == "pending":
            del self.docs[(user_id, key)]


# ---- WAHA ------------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here: nothing after it runs, no handler catches it (a `kill -9`)."""


@dataclass
class FakeSession:
    name: str
    config: dict
    status: str = "STARTING"
    phone: str | None = None
    qr: int = 1  # which QR it shows (each rotation is a new one)

    def info(self) -> dict:
        me = {"id": f"{self.phone}@c.us", "pushName": "Phone"} if self.phone and self.status == "WORKING" else None
        return {"name": self.name, "status": self.status, "config": copy.deepcopy(self.config), "me": me}


@dataclass
class FakeWaha:
    """`ports.Waha` as WAHA behaves: a new or started session is STARTING, the next look finds it
    waiting for a scan (or WORKING if its phone is still linked); `scan` links a phone.
    `fail(op, *errors)` makes the next calls of `op` raise those errors, one each."""

    sessions: dict[str, FakeSession] = field(default_factory=dict)
    sent: list[dict] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    crash_after_send: bool = False
    actions: list[tuple[str, str, str, str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    files_by_message: dict[str, tuple[str, str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail(self, op: str, *errors: BaseException) -> None:
        self.failures.setdefault(op, []).extend(errors)

    def _call(self, op: str, name: str = "") -> None:
        self.calls.append((op, name))
        pending = self.failures.get(op)
        if pending:
            raise pending.pop(0)

    def _session(self, name: str) -> FakeSession:
        session = self.sessions.get(name)
        if session is None:
            raise WahaNotFound(f"WAHA session.get: Session '{name}' not found", 404)
        return session

    def scan(self, name: str, phone: str) -> None:
        session = self._session(name)
        session.status, session.phone = "WORKING", phone

    def calls_of(self, op: str) -> list[str]:
        return [name for called, name in self.calls if called == op]

    async def ping(self) -> bool:
        self._call("ping")
        return True

    async def get_session(self, name: str, *, deadline: float | None = None) -> dict:
        self._call("session.get", name)
        session = self._session(name)
        if session.status == "STARTING":  # what WAHA shows a moment later
            session.status = "WORKING" if session.phone else "SCAN_QR_CODE"
        return session.info()

    async def list_sessions(self, *, deadline: float | None = None) -> list[dict]:
        self._call("session.list")
        return [s.info() for s in self.sessions.values()]

    async def create_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict:
        self._call("session.create", name)
        if name in self.sessions:
            raise WahaRejected(f"Session '{name}' already exists", 422, {"message": f"Session '{name}' already exists"})
        self.sessions[name] = FakeSession(name, copy.deepcopy(config))
        return self.sessions[name].info()

    async def session_action(self, name: str, action: str, *, deadline: float | None = None) -> dict:
        self._call(f"session.{action}", name)
        session = self._session(name)
        if action == "stop":
            session.status = "STOPPED"
        elif action == "logout":
            session.status, session.phone = "STARTING", None
        else:  # start, restart
            session.status = "STARTING"
        return session.info()

    async def qr_value(self, name: str, *, deadline: float | None = None) -> str:
        self._call("qr.raw", name)
        session = self._session(name)
        if session.status != "SCAN_QR_CODE":
            raise WahaRejected("Session status is not as expected", 422, {"status": session.status})
        return f"2@qr-{name}-{session.qr}"

    async def qr_image(self, name: str, *, deadline: float | None = None) -> tuple[str, str]:
        self._call("qr.image", name)
        self._session(name)
        return "image/png", "iVBORw0KGgo="

    async def new_message_id(self, session: str, *, deadline: float | None = None) -> str | None:
        self._call("send.new_id", session)
        return f"3EB0{next(self._ids):08X}"

    async def send_text(
        self, session: str, chat_id: str, text: str, reply_to: str | None = None, *,
        message_id: str | None = None, deadline: float | None = None,
    ) -> SentMessage:
        self._call("send.text", session)
        if self._session(session).status != "WORKING":
            raise WahaRejected("Session status is not as expected", 422, {"status": self.sessions[session].status})
        raw = message_id or f"3EB0{next(self._ids):08X}"
        message = SentMessage(serialized_id(True, chat_id, raw), 1_780_000_000 + len(self.sent), 1)
        self.sent.append({"session": session, "chatId": chat_id, "text": text, "id": message.id})
        if self.crash_after_send:
            raise Crash("killed after WAHA took the message")
        return message

    async def send_media(
        self, session: str, chat_id: str, media: OutgoingFile, caption: str | None = None, reply_to: str | None = None,
        *, message_id: str | None = None, deadline: float | None = None,
    ) -> SentMessage:
        self._call(f"send.{media.kind}", session)
        if self._session(session).status != "WORKING":
            raise WahaRejected("Session status is not as expected", 422, {"status": self.sessions[session].status})
        raw = message_id or f"3EB0{next(self._ids):08X}"
        message = SentMessage(serialized_id(True, chat_id, raw), 1_780_000_000 + len(self.sent), 1)
        self.sent.append({
            "session": session, "chatId": chat_id, "text": caption, "id": message.id, "kind": media.kind,
            "sha256": hashlib.sha256(media.data).hexdigest(), "filename": media.filename,
        })
        if self.crash_after_send:
            raise Crash("killed after WAHA took the message")
        return message

    async def react(self, session: str, message_id: str, reaction: str, *, deadline: float | None = None) -> None:
        self._call("message.react", session)
        self.actions.append(("react", session, message_id, reaction))

    async def edit(self, session: str, chat_id: str, message_id: str, text: str, *, deadline: float | None = None) -> None:
        self._call("message.edit", session)
        self.actions.append(("edit", session, message_id, text))

    async def delete(self, session: str, chat_id: str, message_id: str, *, deadline: float | None = None) -> None:
        self._call("message.delete", session)
        self.actions.append(("delete", session, message_id, ""))

    async def send_seen(
        self, session: str, chat_id: str, message_ids: list[str] | None = None, *, deadline: float | None = None
    ) -> None:
        self._call("chat.seen", session)
        self.actions.append(("seen", session, chat_id, ",".join(message_ids or [])))

    async def set_typing(self, session: str, chat_id: str, typing: bool, *, deadline: float | None = None) -> None:
        self._call("chat.typing", session)
        self.actions.append(("typing", session, chat_id, str(typing)))

    async def message(
        self, session: str, chat_id: str, message_id: str, *, download_media: bool, deadline: float | None = None
    ) -> dict:
        self._call("message.get", session)
        self._session(session)
        if message_id not in self.files_by_message:
            raise WahaNotFound("Message not found", 404)
        url, mimetype = self.files_by_message[message_id]
        return {"id": message_id, "hasMedia": True, "media": {"url": url, "mimetype": mimetype, "filename": None}}

    async def download(self, url: str, max_bytes: int, *, deadline: float | None = None) -> bytes:
        self._call("media.download", url)
        if url not in self.files:
            raise WahaNotFound("FILE_NOT_FOUND", 404)
        data = self.files[url]
        if len(data) > max_bytes:
            raise FileTooLarge(f"WAHA's file is {len(data)} bytes, over the {max_bytes}-byte limit")
        return data

    async def update_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict:
        self._call("session.update", name)
        session = self._session(name)
        session.config = copy.deepcopy(config)
        if session.status != "STOPPED":
            session.status = "STARTING"  # WAHA restarts it; the pairing stays
        return session.info()

    def hold_file(self, message_id: str, data: bytes, mimetype: str = "image/jpeg") -> str:
        """WAHA downloaded a message's file: its URL (`media.url`)."""
        url = f"http://waha.test/api/files/s/{message_id}.bin"
        self.files[url] = data
        self.files_by_message[message_id] = (url, mimetype)
        return url

    async def find_sent(self, session: str, chat_id: str, raw_id: str, *, deadline: float | None = None) -> SentMessage | None:
        self._call("send.find", session)
        wanted = serialized_id(True, chat_id, raw_id)
        for i, m in enumerate(self.sent):
            if m["session"] == session and m["id"] == wanted:
                return SentMessage(wanted, 1_780_000_000 + i, 1)
        return None

    def sent_texts(self, session: str) -> list[str]:
        return [m["text"] for m in self.sent if m["session"] == session]


# ---- the media store -------------------------------------------------------------------------


class MemoryMediaStore:
    """`fleet_shared.media.MediaStore` in a dict (the GridFS and S3 ones pass the same contract test)."""

    name = "gridfs"

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str | None]] = {}
        self.puts = 0

    async def put(self, key: str, data: bytes, mimetype: str | None) -> MediaRef:
        self.puts += 1
        if key not in self.files:
            self.files[key] = (data, mimetype)
        return await self.find(key)  # type: ignore[return-value]

    async def find(self, key: str) -> MediaRef | None:
        if key not in self.files:
            return None
        data = self.files[key][0]
        return MediaRef(store="gridfs", key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def read(self, key: str) -> AsyncIterator[bytes]:
        if key not in self.files:
            raise MediaNotFound(key)
        data = self.files[key][0]
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]

    async def delete(self, key: str) -> None:
        self.files.pop(key, None)


# ---- the broker ------------------------------------------------------------------------------


class RecordingEvents:
    """`ports.EventPublisher` and `ports.CommandPublisher`: keeps what was published; `down` refuses it."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.down = False

    async def publish(self, env: Envelope) -> None:
        if self.down:
            raise BrokerUnavailable(f"broker did not confirm {env.type}")
        self.published.append(env)

    async def send(self, env: Envelope) -> None:
        await self.publish(env)

    def of_type(self, message_type: str, user_id: str | None = None) -> list[Envelope]:
        return [e for e in self.published if e.type == message_type and (user_id is None or e.user_id == user_id)]


# ---- the harness -----------------------------------------------------------------------------


@dataclass
class Harness:
    """One orchestrator "process" over the fakes; `restart()` is a new process over the same state."""

    settings: Settings
    registry: MemoryRegistry
    sends: MemoryLedger
    waha: FakeWaha
    events: RecordingEvents
    upkeep: RecordingEvents
    clock: ManualClock
    media: MemoryMediaStore = field(default_factory=MemoryMediaStore)
    orchestrator: Orchestrator = field(init=False)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> Orchestrator:
        self.orchestrator = bootstrap(
            self.settings, registry=self.registry, sends=self.sends, waha=self.waha, events=self.events,
            upkeep=self.upkeep, media=self.media, clock=self.clock,
        )
        return self.orchestrator

    def envelope(self, payload: Contract, user_id: str, *, id: str | None = None) -> Envelope:
        return envelope(
            payload, user_id, id=id or f"cmd-{next(self._ids)}", session=session_name_for(user_id),
            correlation_id=f"corr-{user_id}", occurred_at=self.clock(),
        )

    async def command(self, payload: Contract, user_id: str, *, id: str | None = None, budget: float = 5.0) -> Reply:
        deadline = asyncio.get_running_loop().time() + budget
        return await self.orchestrator.dispatcher.command(self.envelope(payload, user_id, id=id), deadline)

    async def query(self, payload: Contract, user_id: str) -> Reply:
        return await self.orchestrator.dispatcher.query(self.envelope(payload, user_id))

    async def report(self, user_id: str, status: str, at_ms: int, *, phone: str | None = None, redelivered: bool = False) -> None:
        """WAHA's `session.status` webhook as webhook-ingest reports it."""
        data = SessionStatusReported(
            status=status, phone_number=phone, reported_at_ms=at_ms, waha_event_id=f"evt-{user_id}-{at_ms}-{status}"
        )
        await self.orchestrator.reports.status_reported(self.envelope(data, user_id), redelivered=redelivered)

    async def link(self, user_id: str, phone: str, at_ms: int = 1_000) -> None:
        """QR, scan, WAHA's reports applied: the user is WORKING."""
        reply = await self.command(GetQr(), user_id)
        assert reply.ok and reply.data["status"] == "SCAN_QR_CODE", reply
        await self.report(user_id, "STARTING", at_ms - 2)
        await self.report(user_id, "SCAN_QR_CODE", at_ms - 1)
        self.waha.scan(session_name_for(user_id), phone)
        await self.report(user_id, "WORKING", at_ms, phone=phone)
        assert self.registry.docs[user_id]["status"] == "WORKING"


def WebhookTarget_for(settings: Settings) -> WebhookTarget:  # noqa: N802 (reads as the type it builds)
    return WebhookTarget(settings.webhook_url, settings.webhook_hmac_key)


def unit_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        environment="dev", webhook_url=WEBHOOK_URL, webhook_hmac_key=HMAC_KEY, qr_poll_interval=timedelta(0),
        max_sessions=1000,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def make_harness() -> Callable[..., Harness]:
    def make(**settings: Any) -> Harness:
        return Harness(
            unit_settings(**settings), MemoryRegistry(), MemoryLedger(), FakeWaha(), RecordingEvents(),
            RecordingEvents(), ManualClock(),
        )

    return make


@pytest.fixture
def harness(make_harness) -> Harness:
    return make_harness()


@pytest.fixture
def memory_registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def memory_ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def unavailable() -> Callable[..., WahaUnavailable]:
    def make(not_done: bool = True) -> WahaUnavailable:
        return WahaUnavailable("WAHA answered 503: Service Unavailable", 503, not_done=not_done)

    return make


@pytest.fixture(params=["memory", pytest.param("mongodb", marks=pytest.mark.integration)])
def any_registry(request):
    """The in-memory registry, then the MongoDB one (`registry`, on the test database)."""
    return MemoryRegistry() if request.param == "memory" else request.getfixturevalue("registry")


@pytest.fixture(params=["memory", pytest.param("mongodb", marks=pytest.mark.integration)])
def any_ledger(request):
    return MemoryLedger() if request.param == "memory" else request.getfixturevalue("ledger")
