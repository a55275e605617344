"""`create_app(settings)`: the FastAPI app, with the RabbitMQ connection started in its lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.queue_depth import PARKED, QueueDepths
from fleet_shared.topology import Topology

from .config import Settings
from .link import SERVICE, make_link
from .routes import WebhookFirstApp, install_webhook_route

# How long start-up waits for the first connection attempt before serving anyway (answering 503).
STARTUP_WAIT = 5.0


def create_app(settings: Settings) -> FastAPI:
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    link = make_link(settings, topology)
    parked = QueueDepths(settings.rabbitmq_url, SERVICE, PARKED, [topology.ingest_parked])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await link.start(wait=STARTUP_WAIT)
        try:
            with startup_objects_frozen():
                yield
        finally:
            await link.stop()
            await parked.close()

    app = WebhookFirstApp(title="waha-fleet webhook-ingest", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.include_router(ops_router({"rabbitmq": link.ready}, before_metrics=[parked.refresh]))
    install_webhook_route(app, settings, link, topology)
    return app
