"""The composition root (ADR 0017): the handlers and jobs wired to the adapters they are given.

`app.py` calls it with the real adapters (MongoDB, WAHA over HTTP, the broker); the unit tests call
it with in-memory ones. Nothing else constructs handlers.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fleet_shared.contracts import utcnow
from fleet_shared.contracts.admin import (
    AdminCountSessions,
    AdminGetSession,
    AdminListSessions,
    IdleStopSession,
    ReconcileSession,
)
from fleet_shared.contracts.commands import (
    GetQr,
    GetSession,
    LogoutSession,
    RestartSession,
    SendMessage,
    StartSession,
    StopSession,
)

from .adapters.ports import CommandPublisher, EventPublisher, SendLedger, SessionRegistry, Waha
from .config import Settings
from .entrypoints.jobs import UpkeepJobs
from .handlers import Dispatcher
from .handlers.admission import Admission
from .handlers.bring_up import WebhookTarget
from .handlers.errors import CommandFailures
from .handlers.queries import SessionQueries
from .handlers.reports import Reports
from .handlers.sending import SendCommand
from .handlers.sessions import SessionCommands
from .handlers.statuses import StatusRecorder
from .handlers.upkeep import UpkeepCommands


@dataclass
class Orchestrator:
    dispatcher: Dispatcher
    reports: Reports
    admission: Admission
    jobs: UpkeepJobs


def bootstrap(
    settings: Settings,
    *,
    registry: SessionRegistry,
    sends: SendLedger,
    waha: Waha,
    events: EventPublisher,
    upkeep: CommandPublisher,
    connected: Callable[[], bool] = lambda: True,
    clock: Callable[[], datetime] = utcnow,
) -> Orchestrator:
    """`connected`: whether the broker is reachable (the jobs wait for it before their first round)."""
    webhook = WebhookTarget(settings.webhook_url, settings.webhook_hmac_key)
    recorder = StatusRecorder(registry, events, clock)
    admission = Admission(registry, settings.max_sessions, clock)
    sessions = SessionCommands(
        registry, waha, recorder, webhook, clock, admission, qr_poll_interval=settings.qr_poll_interval.total_seconds()
    )
    repairs = UpkeepCommands(registry, waha, recorder, webhook, settings.session_idle_timeout, clock)
    queries = SessionQueries(registry, registry, settings.max_sessions)
    dispatcher = Dispatcher(
        commands={
            StartSession.TYPE: sessions.start,
            StopSession.TYPE: sessions.stop,
            RestartSession.TYPE: sessions.restart,
            LogoutSession.TYPE: sessions.logout,
            GetQr.TYPE: sessions.qr,
            SendMessage.TYPE: SendCommand(registry, sends, waha, events, clock),
            IdleStopSession.TYPE: repairs.idle_stop,
            ReconcileSession.TYPE: repairs.reconcile,
        },
        queries={
            GetSession.TYPE: queries.status,
            AdminGetSession.TYPE: queries.admin_get,
            AdminListSessions.TYPE: queries.admin_list,
            AdminCountSessions.TYPE: queries.admin_count,
        },
        failures=CommandFailures(registry, recorder, clock),
    )
    jobs = UpkeepJobs(
        registry=registry,
        waha=waha,
        commands=upkeep,
        connected=connected,
        idle_timeout=settings.session_idle_timeout,
        sweep_interval=settings.idle_sweep_interval,
        clock=clock,
    )
    return Orchestrator(dispatcher, Reports(registry, recorder, waha, events, clock), admission, jobs)
