"""The persister's process: MongoDB and the broker opened in FastAPI's lifespan, ops endpoints only."""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fleet_shared.connect import BrokerLink, PublisherLink
from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.mongo import make_mongo_client
from fleet_shared.queue_depth import DEAD_LETTERS, QueueDepths
from fleet_shared.topology import Topology

from .amqp import build_broker, make_persister_broker, stream_publisher
from .config import SERVICE_NAME, Settings
from .eventlog import EventLog
from .handlers import EventHandler
from .queries import QueryService
from .store import Store

log = logging.getLogger(__name__)

# How long start-up waits for RabbitMQ before serving anyway (not ready until it connects).
STARTUP_WAIT = 5.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    dead_letters = QueueDepths(settings.rabbitmq_url, SERVICE_NAME, DEAD_LETTERS, topology.dead_letter_queues(SERVICE_NAME))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client = make_mongo_client(settings.mongodb_url, SERVICE_NAME)
        try:
            store = Store(client[settings.mongodb_database])
            await store.ensure_indexes()
            event_log = EventLog(store.db, settings.event_retention)
            await event_log.ensure_indexes()
            broker = make_persister_broker(settings)
            # The stream's own connection: its publishes keep their order (`stream_publisher`).
            stream = PublisherLink(settings.rabbitmq_url, topology, f"{SERVICE_NAME}-stream")
            handler = EventHandler(
                store,
                retry_timeout=settings.write_retry_timeout.total_seconds(),
                backoff=settings.write_retry_backoff.total_seconds(),
                max_backoff=settings.write_retry_max_backoff.total_seconds(),
                event_log=event_log,
                publish=stream_publisher(stream, topology),
            )
            queries = QueryService(store, settings.page_max_bytes, event_log)
            build_broker(settings, topology, handler, queries, broker)
            link = BrokerLink(broker, settings.rabbitmq_url, topology, SERVICE_NAME)
            await stream.start(wait=STARTUP_WAIT)
            await link.start(wait=STARTUP_WAIT)
            app.state.store, app.state.links = store, (stream, link)
            try:
                with startup_objects_frozen():
                    yield
            finally:
                await link.stop()
                await stream.stop()
                await dead_letters.close()
        finally:
            await client.close()

    async def broker_ready() -> bool:
        links = getattr(app.state, "links", ())
        return bool(links) and all([await link.ready() for link in links])

    async def mongo_ready() -> bool:
        store = getattr(app.state, "store", None)
        return store is not None and await store.ping()

    app = FastAPI(title="waha-fleet persister", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.topology = settings, topology
    install_error_handlers(app)
    app.include_router(ops_router({"broker": broker_ready, "mongodb": mongo_ready}, before_metrics=[dead_letters.refresh]))
    return app
