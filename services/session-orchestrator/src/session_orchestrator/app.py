"""The orchestrator process: FastAPI for /healthz /readyz /metrics; the broker, MongoDB and the WAHA
client live in the lifespan (ADR 0005); `bootstrap()` wires the handlers to them.

Shutdown (SIGTERM): the background jobs stop, then the broker drains — every delivery already taken
is handled and answered (up to the broker's graceful timeout), the rest goes back to its queue for
the next replica. WAHA sessions are left running; whoever drives them next adopts them.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from fleet_shared.broker import make_broker
from fleet_shared.connect import BrokerLink
from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.media import open_media_store
from fleet_shared.mongo import make_mongo_client
from fleet_shared.queue_depth import DEAD_LETTERS, QueueDepths
from fleet_shared.topology import Topology

from .adapters.broker import BrokerEvents, PartitionCommands
from .adapters.mongo_history import MongoHistoryImports
from .adapters.mongo_registry import MongoSessionRegistry
from .adapters.mongo_sends import MongoSendLedger
from .adapters.waha_http import RetryPolicy, WahaClient
from .bootstrap import Orchestrator, bootstrap
from .config import ACTIVITY_PRECISION_SHARE, SERVICE_NAME, Settings
from .entrypoints.ordering import UserSerializer
from .entrypoints.subscribers import register_subscribers
from .metrics import SESSION_LIMIT, RefreshOnScrape, set_session_counts

log = logging.getLogger(__name__)

GAUGE_REFRESH_TIMEOUT = 2.0
# How long start-up waits for RabbitMQ before serving anyway (not ready until it connects).
STARTUP_WAIT = 5.0


@dataclass
class Runtime:
    """Everything the lifespan opened, for the probes and for tests."""

    topology: Topology
    broker: RabbitBroker
    mongo: AsyncMongoClient
    registry: MongoSessionRegistry
    waha: WahaClient
    orchestrator: Orchestrator


def waha_client(settings: Settings) -> WahaClient:
    return WahaClient(
        settings.waha_url,
        settings.waha_api_key,
        timeout=settings.waha_timeout.total_seconds(),
        retry=RetryPolicy(
            attempts=max(1, settings.waha_attempts),
            base=settings.waha_backoff_base.total_seconds(),
            cap=settings.waha_backoff_max.total_seconds(),
        ),
        media_retry=RetryPolicy(
            attempts=max(1, settings.media_fetch_attempts),
            base=settings.waha_backoff_base.total_seconds(),
            cap=settings.media_fetch_backoff_max.total_seconds(),
        ),
        history_retry=RetryPolicy(
            attempts=max(1, settings.history_waha_attempts),
            base=settings.waha_backoff_base.total_seconds(),
            cap=settings.history_backoff_max.total_seconds(),
        ),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    dead_letters = QueueDepths(settings.rabbitmq_url, SERVICE_NAME, DEAD_LETTERS, topology.dead_letter_queues(SERVICE_NAME))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = AsyncExitStack()
        mongo = make_mongo_client(settings.mongodb_url, SERVICE_NAME)
        db = mongo[settings.mongodb_database]
        registry = MongoSessionRegistry(db, activity_precision=settings.session_idle_timeout * ACTIVITY_PRECISION_SHARE)
        sends = MongoSendLedger(db)
        history = MongoHistoryImports(db)
        await registry.ensure_indexes()
        await sends.ensure_indexes()
        await history.ensure_indexes()
        waha = waha_client(settings)
        broker = make_broker(settings, SERVICE_NAME, prefetch=settings.command_prefetch)
        link = BrokerLink(broker, settings.rabbitmq_url, topology, SERVICE_NAME)
        media = await resources.enter_async_context(open_media_store(settings, mongo))
        orchestrator = bootstrap(
            settings,
            registry=registry,
            sends=sends,
            waha=waha,
            events=BrokerEvents(broker, topology),
            upkeep=PartitionCommands(broker, topology),
            media=media,
            connected=lambda: link.connection.connected,
            history=history,
        )
        SESSION_LIMIT.set(settings.max_sessions)
        register_subscribers(broker, topology, orchestrator, UserSerializer(), settings)
        app.state.runtime = Runtime(topology, broker, mongo, registry, waha, orchestrator)
        app.state.link = link
        try:
            await link.start(wait=STARTUP_WAIT)
            orchestrator.jobs.start()
            if orchestrator.history is not None:
                orchestrator.history.start_resuming()
            with startup_objects_frozen():
                yield
        finally:
            log.info("shutting down: draining the commands in hand; WAHA sessions keep running")
            await orchestrator.jobs.stop()
            if orchestrator.history is not None:
                await orchestrator.history.stop()
            await link.stop()
            await orchestrator.admission.close()
            await dead_letters.close()
            await waha.aclose()
            await resources.aclose()
            await mongo.close()
            log.info("shut down")

    app = FastAPI(title="waha-fleet session-orchestrator", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)

    def runtime() -> Runtime:
        return app.state.runtime

    async def broker_ready() -> bool:
        return await app.state.link.ready()

    async def mongo_ready() -> bool:
        await runtime().mongo.admin.command("ping")
        return True

    async def waha_ready() -> bool:
        return await runtime().waha.ping()

    async def refresh_gauge() -> None:
        counts = await asyncio.wait_for(runtime().registry.count_by_status(), GAUGE_REFRESH_TIMEOUT)
        set_session_counts(counts)

    app.include_router(
        ops_router({"broker": broker_ready, "mongodb": mongo_ready, "waha": waha_ready}, before_metrics=[dead_letters.refresh])
    )
    app.add_middleware(RefreshOnScrape, refresh=refresh_gauge)
    return app
