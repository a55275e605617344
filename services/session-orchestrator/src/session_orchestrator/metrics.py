"""Prometheus metrics of the orchestrator (module level: one registration per process)."""

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from .domain.statuses import RUNNING, STATUSES

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "orchestrator_messages_total", "Commands, queries and reports handled, by type and outcome", ["type", "outcome"]
)
MESSAGE_DURATION = Histogram(
    "orchestrator_message_duration_seconds", "Time from taking a message to answering it", ["type"]
)
WAHA_CALLS = Counter("orchestrator_waha_calls_total", "HTTP calls to WAHA, by operation and outcome", ["op", "outcome"])
WAHA_DURATION = Histogram("orchestrator_waha_call_duration_seconds", "WAHA HTTP call duration", ["op"])
SESSIONS = Gauge("orchestrator_sessions", "Users' sessions in the registry, by status", ["status"])
STATUS_CHANGES = Counter("orchestrator_status_changes_total", "Session status changes applied", ["status"])
STALE_REPORTS = Counter("orchestrator_stale_status_reports_total", "Status reports older than what the registry holds")
USERS_IN_FLIGHT = Gauge("orchestrator_users_in_flight", "Users with a command being handled or waiting")
SESSIONS_RUNNING = Gauge("orchestrator_sessions_running", "Sessions holding a slot (STARTING, SCAN_QR_CODE, WORKING)")
SESSION_LIMIT = Gauge("orchestrator_session_limit", "MAX_SESSIONS: sessions that may run at once")
LIMIT_REFUSALS = Counter("orchestrator_session_limit_refusals_total", "Sessions refused because MAX_SESSIONS run")
IDLE_STOPS = Counter("orchestrator_idle_stops_total", "Sessions stopped after SESSION_IDLE_TIMEOUT without activity")
REPAIRS = Counter("orchestrator_reconcile_repairs_total", "Reconciliation repairs applied, by kind", ["repair"])
ACTIVITY = Counter("orchestrator_activity_events_total", "Activity reports (session.active) noted as user activity")
RECONFIGURED = Counter("orchestrator_sessions_reconfigured_total", "WAHA sessions given the current config")
HISTORY_IMPORTS = Counter(
    "orchestrator_history_imports_total", "History imports started, resumed, done and failed", ["event"]
)
HISTORY_MESSAGES = Counter("orchestrator_history_messages_total", "Messages published by history imports")
MEDIA_COPIES = Counter("orchestrator_media_copies_total", "Media files copied out of WAHA, by outcome", ["status"])


def set_session_counts(counts: dict[str, int]) -> None:
    for status in STATUSES:
        SESSIONS.labels(status).set(counts.get(status, 0))
    SESSIONS_RUNNING.set(sum(counts.get(status, 0) for status in RUNNING))


class RefreshOnScrape:
    """Refresh the sessions-by-status gauge from the registry right before `/metrics` answers."""

    def __init__(self, app: ASGIApp, refresh: Callable[[], Awaitable[None]], path: str = "/metrics") -> None:
        self.app = app
        self.refresh = refresh
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == self.path:
            try:
                await self.refresh()
            except Exception as exc:  # a stale gauge beats a failed scrape
                log.warning("could not refresh the sessions gauge: %r", exc)
        await self.app(scope, receive, send)
