"""The orchestrator process: FastAPI for /healthz /readyz /metrics; the broker, MongoDB and the WAHA
client live in the lifespan (decision 5).

Shutdown (SIGTERM): the background jobs stop, then the broker drains — every delivery already taken
is handled and answered (up to the broker's graceful timeout), the rest goes back to its queue for
the next replica. WAHA sessions are left running; whoever drives them next adopts them.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from fleet_shared.broker import make_broker, publish_envelope
from fleet_shared.connect import BrokerLink
from fleet_shared.contracts import Envelope, utcnow
from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.mongo import make_mongo_client
from fleet_shared.queue_depth import DEAD_LETTERS, QueueDepths
from fleet_shared.topology import Topology

from .amqp import BrokerEvents, register_subscribers
from .config import ACTIVITY_PRECISION_SHARE, SERVICE_NAME, Settings
from .dispatch import UserSerializer
from .handlers import Handlers
from .lifecycle import WebhookTarget
from .limits import Admission
from .metrics import SESSION_LIMIT, RefreshOnScrape, set_session_counts
from .registry import SessionRegistry
from .sends import SendLedger
from .upkeep import Upkeep
from .waha_client import RetryPolicy, WahaClient

log = logging.getLogger(__name__)

GAUGE_REFRESH_TIMEOUT = 2.0


@dataclass
class Runtime:
    """Everything the lifespan opened, for the probes and for tests."""

    topology: Topology
    broker: RabbitBroker
    mongo: AsyncMongoClient
    registry: SessionRegistry
    waha: WahaClient
    serializer: UserSerializer
    handlers: Handlers
    upkeep: Upkeep


def build_waha_client(settings: Settings) -> WahaClient:
    return WahaClient(
        settings.waha_url,
        settings.waha_api_key,
        timeout=settings.waha_timeout.total_seconds(),
        retry=RetryPolicy(
            attempts=max(1, settings.waha_attempts),
            base=settings.waha_backoff_base.total_seconds(),
            cap=settings.waha_backoff_max.total_seconds(),
        ),
    )

# How long start-up waits for RabbitMQ before serving anyway (not ready until it connects).
STARTUP_WAIT = 5.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    names = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    consumed = [*names.orchestrator_command_queues, names.orchestrator_activity]
    dead_letters = QueueDepths(settings.rabbitmq_url, SERVICE_NAME, DEAD_LETTERS, [names.dead_letter_queue(q) for q in consumed])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
        mongo = make_mongo_client(settings.mongodb_url, SERVICE_NAME)
        db = mongo[settings.mongodb_database]
        registry = SessionRegistry(db, activity_precision=settings.session_idle_timeout * ACTIVITY_PRECISION_SHARE)
        sends = SendLedger(db)
        await registry.ensure_indexes()
        await sends.ensure_indexes()
        waha = build_waha_client(settings)
        broker = make_broker(settings, SERVICE_NAME, prefetch=settings.command_prefetch)
        serializer = UserSerializer()
        handlers = Handlers(
            registry=registry,
            sends=sends,
            waha=waha,
            events=BrokerEvents(broker, topology),
            webhook=WebhookTarget(settings.webhook_url, settings.webhook_hmac_key),
            qr_poll_interval=settings.qr_poll_interval.total_seconds(),
            admission=Admission(registry, settings.max_sessions, utcnow),
            idle_timeout=settings.session_idle_timeout,
        )
        SESSION_LIMIT.set(settings.max_sessions)
        register_subscribers(broker, topology, handlers, serializer, settings, registry)
        link = BrokerLink(broker, settings.rabbitmq_url, topology, SERVICE_NAME)

        async def send_command(env: Envelope) -> None:
            # Straight to the partition exchange (hashed on x-user-id, like every command): upkeep
            # commands are the orchestrator's own business, not the public commands exchange's.
            await publish_envelope(broker, topology.orchestrator_partition, env)

        upkeep = Upkeep(
            registry=registry,
            waha=waha,
            publish=send_command,
            connected=lambda: link.connection.connected,
            idle_timeout=settings.session_idle_timeout,
            sweep_interval=settings.idle_sweep_interval,
            clock=utcnow,
        )
        app.state.runtime = Runtime(topology, broker, mongo, registry, waha, serializer, handlers, upkeep)
        app.state.link = link
        try:
            await link.start(wait=STARTUP_WAIT)
            upkeep.start()
            with startup_objects_frozen():
                yield
        finally:
            log.info("shutting down: draining the commands in hand; WAHA sessions keep running")
            await upkeep.stop()
            await link.stop()
            if handlers.admission is not None:
                await handlers.admission.close()
            await dead_letters.close()
            await waha.aclose()
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
