"""The gateway's FastAPI app: JWT-authenticated REST API turned into RabbitMQ requests."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from fleet_shared.broker import RpcClient
from fleet_shared.connect import BackgroundConnection
from fleet_shared.http import install_error_handlers, ops_router, startup_objects_frozen
from fleet_shared.media import open_media_store
from fleet_shared.mongo import make_mongo_client
from fleet_shared.topology import Topology

from . import (
    routes_admin,
    routes_console,
    routes_docs,
    routes_events,
    routes_messages,
    routes_tickets,
    routes_waha,
    routes_webhooks,
)
from .auth import TokenVerifier
from .bus import Bus
from .config import Settings
from .guard import Admission, RequestGuard
from .limits import UserLimits
from .live import LiveHub
from .media_intake import MediaIntake
from .metrics import MetricsMiddleware
from .openapi import install_openapi
from .status_cache import StatusReadModel
from .status_route import STATUS_PATH, StatusEndpoint, StatusFirstApp
from .tickets import TicketIssuer

SERVICE = "gateway"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    rpc = RpcClient(settings.rabbitmq_url, topology, SERVICE)
    live = LiveHub(
        settings.rabbitmq_url,
        topology,
        buffer_size=settings.events_buffer,
        prefetch=settings.events_prefetch,
        max_per_user=settings.events_max_per_user,
        max_total=settings.events_max_connections,
        name=f"{SERVICE}-live",
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = BackgroundConnection(settings.rabbitmq_url, topology, rpc.connect, SERVICE)
        live_connection = BackgroundConnection(settings.rabbitmq_url, topology, live.connect, f"{SERVICE}-live")
        await connection.start()
        await live_connection.start()
        statuses.start()
        async with AsyncExitStack() as resources:
            mongo = None
            if settings.media_store == "gridfs":
                mongo = make_mongo_client(settings.mongodb_url, SERVICE)
                resources.push_async_callback(mongo.close)
            http = await resources.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)))
            store = await resources.enter_async_context(open_media_store(settings, mongo))
            app.state.media = MediaIntake(store, http, settings.media_max_bytes, settings.media_url_allow_private)
            try:
                with startup_objects_frozen():
                    yield
            finally:
                await statuses.close()
                await live_connection.stop()
                await connection.stop()
                await live.close()
                await rpc.close()

    app = StatusFirstApp(
        title="waha-fleet gateway",
        version="1",
        description="Each user's own WhatsApp (WAHA) session behind one API. "
        "Authenticate with `Authorization: Bearer <JWT>` (HS256); the user is the token's `sub`.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's would load Swagger UI from a CDN: routes_docs serves it from here
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rpc = rpc
    app.state.live = live
    limits = UserLimits(settings.user_max_pending, settings.user_rate, settings.user_burst)
    statuses = StatusReadModel(settings.rabbitmq_url, topology, ttl=settings.status_cache_ttl.total_seconds())
    app.state.bus = Bus(rpc, topology, settings.request_timeout, limits, statuses)
    app.state.token_verifier = TokenVerifier(
        settings.jwt_secret, settings.jwt_leeway, max_lifetime=settings.jwt_max_lifetime,
        audience=settings.jwt_audience, issuer=settings.jwt_issuer,
    )
    app.state.tickets = TicketIssuer(settings.jwt_secret)

    async def broker_ready() -> bool:
        return rpc.connected and live.connected

    install_error_handlers(app)
    api = (routes_waha, routes_messages, routes_events, routes_tickets, routes_admin)
    admission = Admission(
        app.state.token_verifier, json_max_bytes=settings.api_max_body_bytes, media_max_bytes=settings.media_max_bytes
    )
    app.add_middleware(RequestGuard, admission=admission, routes=[r for m in api for r in m.router.routes])
    app.add_middleware(MetricsMiddleware)  # outermost: it counts what the guard refuses too
    app.include_router(ops_router({"rabbitmq": broker_ready}))
    app.include_router(routes_waha.router)
    app.include_router(routes_messages.router)
    app.include_router(routes_events.router)
    app.include_router(routes_tickets.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_webhooks.admin_router)
    app.include_router(routes_console.router)
    app.include_router(routes_docs.router)
    install_openapi(app, routes_events.COMPONENT_SCHEMAS)
    status_route = next(r for r in routes_waha.router.routes if getattr(r, "path", None) == STATUS_PATH)
    app.status_app = MetricsMiddleware(StatusEndpoint(status_route, admission, app.state.bus))
    return app
