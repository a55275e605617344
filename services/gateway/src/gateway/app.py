"""The gateway's FastAPI app: JWT-authenticated REST API turned into RabbitMQ requests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fleet_shared.broker import RpcClient
from fleet_shared.connect import BackgroundConnection
from fleet_shared.http import install_error_handlers, ops_router
from fleet_shared.topology import Topology

from . import routes_admin, routes_waha
from .auth import TokenVerifier
from .bus import Bus
from .config import Settings
from .metrics import MetricsMiddleware

SERVICE = "gateway"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    rpc = RpcClient(settings.rabbitmq_url, topology, SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = BackgroundConnection(settings.rabbitmq_url, topology, rpc.connect, SERVICE)
        await connection.start()
        try:
            yield
        finally:
            await connection.stop()
            await rpc.close()

    app = FastAPI(
        title="waha-fleet gateway",
        version="1",
        description="Each user's own WhatsApp (WAHA) session behind one API. "
        "Authenticate with `Authorization: Bearer <JWT>` (HS256); the user is the token's `sub`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rpc = rpc
    app.state.bus = Bus(rpc, topology, settings.request_timeout)
    app.state.token_verifier = TokenVerifier(settings.jwt_secret, settings.jwt_leeway)

    async def broker_ready() -> bool:
        return rpc.connected

    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.include_router(ops_router({"rabbitmq": broker_ready}))
    app.include_router(routes_waha.router)
    app.include_router(routes_admin.router)
    return app
