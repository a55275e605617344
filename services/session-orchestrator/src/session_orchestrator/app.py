"""The orchestrator process: FastAPI for /healthz /readyz /metrics; the broker, MongoDB and the WAHA
client live in the lifespan (decision 5)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from fleet_shared.broker import make_broker
from fleet_shared.connect import BrokerLink
from fleet_shared.http import install_error_handlers, ops_router
from fleet_shared.mongo import make_mongo_client
from fleet_shared.topology import Topology

from .amqp import BrokerEvents, register_subscribers
from .config import SERVICE_NAME, Settings
from .dispatch import UserSerializer
from .handlers import Handlers
from .lifecycle import WebhookTarget
from .metrics import RefreshOnScrape, set_session_counts
from .registry import SessionRegistry
from .sends import SendLedger
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
        mongo = make_mongo_client(settings.mongodb_url, SERVICE_NAME)
        db = mongo[settings.mongodb_database]
        registry = SessionRegistry(db)
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
        )
        register_subscribers(broker, topology, handlers, serializer, settings)
        app.state.runtime = Runtime(topology, broker, mongo, registry, waha, serializer, handlers)
        link = BrokerLink(broker, settings.rabbitmq_url, topology, SERVICE_NAME)
        app.state.link = link
        try:
            await link.start(wait=STARTUP_WAIT)
            yield
        finally:
            await link.stop()
            await waha.aclose()
            await mongo.close()

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

    app.include_router(ops_router({"broker": broker_ready, "mongodb": mongo_ready, "waha": waha_ready}))
    app.add_middleware(RefreshOnScrape, refresh=refresh_gauge)
    return app
