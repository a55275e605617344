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
    ReconfigureSession,
)
from fleet_shared.contracts.commands import (
    DeleteMessage,
    EditMessage,
    GetQr,
    GetSession,
    ImportHistory,
    LogoutSession,
    MarkChatRead,
    ReactToMessage,
    RequestPairingCode,
    RestartSession,
    RetryMedia,
    SendMessage,
    SetTyping,
    StartSession,
    StopSession,
)
from fleet_shared.media import MediaStore

from .adapters.ports import CommandPublisher, EventPublisher, HistoryImports, SendLedger, SessionRegistry, Waha
from .config import Settings
from .domain.session_config import WebhookTarget, session_config
from .entrypoints.jobs import UpkeepJobs
from .handlers import Dispatcher
from .handlers.actions import MessageActions
from .handlers.admission import Admission
from .handlers.errors import CommandFailures
from .handlers.history import HistoryImporter, HistoryPolicy
from .handlers.lids import LidResolver
from .handlers.media import MediaCopier
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
    media: MediaCopier
    admission: Admission
    jobs: UpkeepJobs
    history: HistoryImporter | None = None
    lids: LidResolver | None = None


def bootstrap(
    settings: Settings,
    *,
    registry: SessionRegistry,
    sends: SendLedger,
    waha: Waha,
    events: EventPublisher,
    upkeep: CommandPublisher,
    media: MediaStore,
    connected: Callable[[], bool] = lambda: True,
    clock: Callable[[], datetime] = utcnow,
    history: HistoryImports | None = None,
) -> Orchestrator:
    """`connected`: whether the broker is reachable (the jobs wait for it before their first round).
    `history`: where history imports keep their cursor (None: no history import)."""
    webhook = WebhookTarget(settings.webhook_url, settings.webhook_hmac_key)
    recorder = StatusRecorder(registry, events, clock)
    admission = Admission(registry, settings.max_sessions, clock)
    sessions = SessionCommands(
        registry, waha, recorder, webhook, clock, admission, qr_poll_interval=settings.qr_poll_interval.total_seconds()
    )
    repairs = UpkeepCommands(registry, waha, recorder, webhook, settings.session_idle_timeout, clock)
    queries = SessionQueries(registry, registry, settings.max_sessions, history)
    importer = (
        HistoryImporter(history, registry, waha, events, history_policy(settings), clock) if history is not None else None
    )
    actions = MessageActions(registry, waha, events, clock)
    copier = MediaCopier(waha, media, events, settings.media_max_bytes)
    dispatcher = Dispatcher(
        commands={
            StartSession.TYPE: sessions.start,
            StopSession.TYPE: sessions.stop,
            RestartSession.TYPE: sessions.restart,
            LogoutSession.TYPE: sessions.logout,
            GetQr.TYPE: sessions.qr,
            RequestPairingCode.TYPE: sessions.pairing_code,
            **({ImportHistory.TYPE: importer.command} if importer is not None else {}),
            SendMessage.TYPE: SendCommand(registry, sends, waha, events, media, clock),
            ReactToMessage.TYPE: actions.react,
            EditMessage.TYPE: actions.edit,
            DeleteMessage.TYPE: actions.delete,
            MarkChatRead.TYPE: actions.mark_read,
            SetTyping.TYPE: actions.typing,
            RetryMedia.TYPE: copier.retry,
            IdleStopSession.TYPE: repairs.idle_stop,
            ReconcileSession.TYPE: repairs.reconcile,
            ReconfigureSession.TYPE: repairs.reconfigure,
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
        desired_config=lambda user_id: session_config(user_id, webhook),
        rollout_interval=settings.config_rollout_interval,
    )
    reports = Reports(registry, recorder, waha, events, clock, on_paired=importer.paired if importer else None)
    return Orchestrator(dispatcher, reports, copier, admission, jobs, importer, LidResolver(waha, events))


def history_policy(settings: Settings) -> HistoryPolicy:
    return HistoryPolicy(
        messages_per_chat=settings.history_messages_per_chat,
        chats_page=settings.history_chats_page,
        concurrency=max(1, settings.history_concurrency),
        lease=settings.history_lease,
        resume_interval=settings.history_resume_interval,
        timeout=settings.history_import_timeout,
    )
