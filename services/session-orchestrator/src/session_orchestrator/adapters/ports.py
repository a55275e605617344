"""What the handlers need from the outside world, as small Protocols, and the errors WAHA's side raises.

The real adapters: `waha_http.WahaClient`, `mongo_registry.MongoSessionRegistry`,
`mongo_sends.MongoSendLedger`, `broker.BrokerEvents` / `broker.PartitionCommands`. The unit tests
hand `bootstrap()` in-memory ones (tests/unit/conftest.py) and run the same contract tests on both.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.commands import SessionView

from ..domain.sending import Claim, Sending
from ..domain.statuses import ReportDecision, SessionState

# ---- WAHA ------------------------------------------------------------------------------------


class WahaError(Exception):
    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class WahaNotFound(WahaError):
    """404: WAHA has no such session (or message)."""


class WahaRejected(WahaError):
    """Any other 4xx (422 "already exists", "status is not as expected", 400, 401...)."""

    @property
    def session_status(self) -> str | None:
        """For WAHA's 422 "Session status is not as expected": the status the session was in."""
        return self.body.get("status") if isinstance(self.body, dict) else None

    @property
    def already_exists(self) -> bool:
        return self.status == 422 and "already exists" in error_text(self.body).lower()


class WahaUnavailable(WahaError):
    """429, 5xx, timeouts and connection errors, after the retries."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, *, not_done: bool = False) -> None:
        super().__init__(message, status, body)
        # True when WAHA certainly did not act on the call (unreachable, or it said 429/503).
        self.not_done = not_done


class WahaBadResponse(WahaError):
    """A 2xx whose body is not what WAHA documents."""


class FileTooLarge(WahaError):
    """A media file bigger than MEDIA_MAX_BYTES."""


def error_text(body: Any) -> str:
    """The human part of any of WAHA's three error body shapes."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, list):
                return "; ".join(str(v) for v in value)
            if isinstance(value, str) and value:
                return value
        exception = body.get("exception")
        if isinstance(exception, dict) and exception.get("message"):
            return str(exception["message"])
    if isinstance(body, str):
        return body[:300]
    return ""


@dataclass(frozen=True)
class OutgoingFile:
    kind: str  # image, document, voice, video
    mimetype: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class SentMessage:
    id: str  # serialized: `true_<chatId>_<rawId>`
    timestamp: int
    ack: int | None


class Waha(Protocol):
    """WAHA's HTTP API, the calls the orchestrator makes. `deadline`: loop time the call must end by.
    Session calls answer WAHA's SessionInfo (`name`, `status`, `config`, `me`)."""

    async def ping(self) -> bool: ...
    async def get_session(self, name: str, *, deadline: float | None = None) -> dict: ...
    async def list_sessions(self, *, deadline: float | None = None) -> list[dict]: ...
    async def create_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict: ...
    async def session_action(self, name: str, action: str, *, deadline: float | None = None) -> dict: ...
    async def qr_value(self, name: str, *, deadline: float | None = None) -> str: ...
    async def qr_image(self, name: str, *, deadline: float | None = None) -> tuple[str, str]: ...
    async def new_message_id(self, session: str, *, deadline: float | None = None) -> str | None: ...
    async def send_text(
        self, session: str, chat_id: str, text: str, reply_to: str | None = None, *,
        message_id: str | None = None, deadline: float | None = None,
    ) -> SentMessage: ...
    async def find_sent(
        self, session: str, chat_id: str, raw_id: str, *, deadline: float | None = None
    ) -> SentMessage | None: ...
    async def send_media(
        self, session: str, chat_id: str, media: OutgoingFile, caption: str | None = None, reply_to: str | None = None,
        *, message_id: str | None = None, deadline: float | None = None,
    ) -> SentMessage: ...
    async def react(self, session: str, message_id: str, reaction: str, *, deadline: float | None = None) -> None: ...
    async def edit(self, session: str, chat_id: str, message_id: str, text: str, *, deadline: float | None = None) -> None: ...
    async def delete(self, session: str, chat_id: str, message_id: str, *, deadline: float | None = None) -> None: ...
    async def send_seen(
        self, session: str, chat_id: str, message_ids: list[str] | None = None, *, deadline: float | None = None
    ) -> None: ...
    async def set_typing(self, session: str, chat_id: str, typing: bool, *, deadline: float | None = None) -> None: ...
    async def message(
        self, session: str, chat_id: str, message_id: str, *, download_media: bool, deadline: float | None = None
    ) -> dict: ...
    async def download(self, url: str, max_bytes: int, *, deadline: float | None = None) -> bytes: ...
    async def update_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict: ...
    async def request_code(self, name: str, phone_number: str, *, deadline: float | None = None) -> str: ...
    # The synced history, paced by the history import's own retry policy (no deadline: it waits out 429s).
    async def chats_overview(self, session: str, limit: int, offset: int) -> list[dict]: ...
    async def chat_messages(self, session: str, chat_id: str, limit: int) -> list[dict]: ...
    async def lids(self, session: str, limit: int, offset: int) -> list[dict]: ...
    async def groups(self, session: str) -> list[dict]: ...
    async def lid(self, session: str, lid: str) -> dict: ...


# ---- the session registry --------------------------------------------------------------------
# One record per user (`mongo_registry` documents its fields). Split by what each part of the
# service does with it; one adapter implements them all.


class SessionRecords(Protocol):
    """A user's record as commands and activity write it. Each write answers nothing or the record."""

    async def get(self, user_id: str) -> dict | None: ...
    async def view(self, user_id: str) -> SessionView: ...
    async def touch(self, user_id: str, now: datetime, *, desired: str | None = None) -> dict: ...
    async def touch_send(self, user_id: str, now: datetime) -> dict: ...
    async def record_error(self, user_id: str, message: str, now: datetime) -> None: ...
    async def clear_error(self, user_id: str, now: datetime) -> None: ...
    async def forget_phone(self, user_id: str, now: datetime) -> None: ...
    async def ensure_record(self, user_id: str, now: datetime) -> dict: ...
    async def set_desired(self, user_id: str, desired: str, now: datetime, *, idle: bool = False) -> None: ...
    async def note_activity(self, user_id: str, at: datetime) -> bool: ...


class StatusStore(Protocol):
    """The status part of a record, written by compare-and-set."""

    async def state(self, user_id: str) -> SessionState: ...
    async def apply_report(
        self, user_id: str, previous: SessionState, decision: ReportDecision, now: datetime
    ) -> bool: ...


class SlotCounter(Protocol):
    """What MAX_SESSIONS admission counts."""

    async def mark_admitted(self, user_id: str, now: datetime) -> None: ...
    async def count_running(self, *, exclude: str | list[str], admitted_since: datetime) -> int: ...
    async def holding_slots(self, users: list[str], *, admitted_since: datetime) -> set[str]: ...


class FleetRecords(Protocol):
    """Reads across every user: operators, the idle sweep, reconciliation, the gauges."""

    async def list_records(self, statuses: list[str] | None, limit: int) -> list[dict]: ...
    async def count_by_status(self) -> dict[str, int]: ...
    async def idle_users(self, cutoff: datetime, limit: int) -> list[str]: ...
    async def not_stopped(self) -> dict[str, tuple[str, str | None]]: ...


class SessionRegistry(SessionRecords, StatusStore, SlotCounter, FleetRecords, Protocol):
    """All of it: what one adapter implements."""


# ---- the history import ---------------------------------------------------------------------


class HistoryImports(Protocol):
    """One import record per user: its progress, the durable cursor a resumed import continues
    from (`offset` of the next overview page, the chats done), and who runs it (a lease)."""

    async def begin(self, user_id: str, owner: str, now: datetime, lease_until: datetime) -> bool: ...
    async def claim(self, user_id: str, owner: str, now: datetime, lease_until: datetime) -> dict | None: ...
    async def renew(self, user_id: str, owner: str, lease_until: datetime) -> bool: ...
    async def chat_done(self, user_id: str, owner: str, chat_id: str, messages: int) -> bool: ...
    async def page_done(self, user_id: str, owner: str, offset: int) -> bool: ...
    async def finish(self, user_id: str, owner: str, now: datetime, error: str | None) -> None: ...
    async def stale(self, now: datetime, limit: int) -> list[str]: ...
    async def view(self, user_id: str) -> dict | None: ...


# ---- the send ledger -------------------------------------------------------------------------


class SendLedger(Protocol):
    """Idempotency-Key claims (`domain/sending.py` says what they mean)."""

    async def claim(
        self, user_id: str, key: str, print_: str, command_id: str, now: datetime, *, sending: Sending | None = None
    ) -> Claim: ...
    async def mark_sending(self, user_id: str, key: str, message_id: str | None, now: datetime, budget: float) -> None: ...
    async def complete(self, user_id: str, key: str, result: dict, now: datetime) -> None: ...
    async def release(self, user_id: str, key: str) -> None: ...


# ---- the broker ------------------------------------------------------------------------------


class EventPublisher(Protocol):
    """Publishes a fact on `<p>.events` (confirmed; raises `fleet_shared.broker.BrokerUnavailable`)."""

    async def publish(self, env: Envelope) -> None: ...


class CommandPublisher(Protocol):
    """Sends one of the orchestrator's own commands through the user's partition (upkeep)."""

    async def send(self, env: Envelope) -> None: ...
