"""The dispatcher's process: MongoDB, the broker and the delivery workers opened in FastAPI's
lifespan; ops endpoints only (the API is the gateway's)."""

import logging
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from fleet_shared.broker import RpcClient
from fleet_shared.connect import BackgroundConnection, BrokerLink
from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.mongo import make_mongo_client
from fleet_shared.queue_depth import DEAD_LETTERS, QueueDepths
from fleet_shared.topology import Topology

from .amqp import build_broker, events_asker
from .binder import Binder
from .config import SERVICE_NAME, Settings
from .delivery import Dispatcher
from .intake import Intake
from .requests import Requests
from .store import Store

log = logging.getLogger(__name__)

STARTUP_WAIT = 5.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    dead_letters = QueueDepths(
        settings.rabbitmq_url, SERVICE_NAME, DEAD_LETTERS, topology.dead_letter_queues(SERVICE_NAME)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with AsyncExitStack() as resources:
            client = make_mongo_client(settings.mongodb_url, SERVICE_NAME)
            resources.push_async_callback(client.close)
            store = Store(client[settings.mongodb_database], settings.webhook_log_retention)
            await store.ensure_indexes()
            # No redirects: a redirect to an internal address would get around the SSRF check.
            http = await resources.enter_async_context(
                httpx.AsyncClient(timeout=settings.webhook_timeout.total_seconds(), follow_redirects=False)
            )
            dispatcher = Dispatcher(
                store, http, concurrency=settings.webhook_concurrency, retry_for=settings.webhook_retry_for,
                backoff_base=settings.webhook_backoff, backoff_cap=settings.webhook_max_backoff,
                allow_private=settings.webhook_allow_private_targets,
            )
            rpc = RpcClient(settings.rabbitmq_url, topology, SERVICE_NAME)
            binder = Binder(settings.rabbitmq_url, topology)
            intake = Intake(store, dispatcher, events_asker(rpc, topology, settings.request_timeout.total_seconds()))
            requests = Requests(
                store, dispatcher, binder, intake, allow_private=settings.webhook_allow_private_targets,
                max_per_user=settings.webhook_max_per_user,
            )
            rpc_link = BackgroundConnection(settings.rabbitmq_url, topology, rpc.connect, f"{SERVICE_NAME}-rpc")
            binder_link = BackgroundConnection(settings.rabbitmq_url, topology, binder.connect, f"{SERVICE_NAME}-binder")
            link = BrokerLink(build_broker(settings, topology, intake, requests), settings.rabbitmq_url, topology, SERVICE_NAME)
            for background in (rpc_link, binder_link):
                await background.start()
                resources.push_async_callback(background.stop)
            resources.push_async_callback(rpc.close)
            resources.push_async_callback(binder.close)
            await dispatcher.start()
            resources.push_async_callback(dispatcher.stop)
            await intake.start()
            resources.push_async_callback(intake.stop)
            await link.start(wait=STARTUP_WAIT)
            resources.push_async_callback(link.stop)
            resources.push_async_callback(dead_letters.close)
            app.state.store, app.state.link, app.state.dispatcher = store, link, dispatcher
            app.state.rpc = rpc
            with startup_objects_frozen():
                yield

    async def broker_ready() -> bool:
        link = getattr(app.state, "link", None)
        rpc = getattr(app.state, "rpc", None)
        return link is not None and rpc is not None and rpc.connected and await link.ready()

    async def mongo_ready() -> bool:
        store = getattr(app.state, "store", None)
        return store is not None and await store.ping()

    app = FastAPI(title="waha-fleet webhook-dispatcher", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.topology = settings, topology
    install_error_handlers(app)
    app.include_router(ops_router({"broker": broker_ready, "mongodb": mongo_ready}, before_metrics=[dead_letters.refresh]))
    return app
