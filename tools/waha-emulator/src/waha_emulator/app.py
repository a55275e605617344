"""create_app(config): the emulator as an ASGI app (in-process for tests, or under uvicorn)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from . import (
    history,
    routes_actions,
    routes_auth,
    routes_chats,
    routes_contacts,
    routes_control,
    routes_control_chat,
    routes_control_directory,
    routes_files,
    routes_groups,
    routes_messages,
    routes_server,
    routes_sessions,
)
from .actions import Actions
from .config import EmulatorConfig
from .errors import install_error_handlers
from .faults import Faults
from .media import FileStore
from .messaging import Messaging
from .middleware import ApiMiddleware, CallLog
from .persistence import StateFile
from .state import Session, SessionManager
from .webhooks import WebhookDispatcher

log = logging.getLogger("waha_emulator")


class Emulator:
    """Everything one emulator instance holds; shared by the routes through app.state.emulator."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.faults = Faults()
        self.calls = CallLog()
        self.webhooks = WebhookDispatcher(version=config.version, engine=config.engine,
                                          timeout=config.webhook_timeout, faults=lambda: self.faults)
        self.sessions = SessionManager(config, self.webhooks.emit, StateFile(config.state_file))
        self.files = FileStore(config.files_lifetime)
        self.messaging = Messaging(self.sessions, config, self.files)
        self.actions = Actions(self.sessions, self.messaging)
        if config.seed_history:
            self.sessions.on_linked = self._seed_history
        self._started = False
        self._start_lock = asyncio.Lock()

    def _seed_history(self, s: Session) -> None:
        history.generate(s, self.config.seed_history, self.config.seed_history_messages)

    @property
    def environment(self) -> dict[str, Any]:
        return self.webhooks.environment

    async def ensure_started(self) -> None:
        """Idempotent start-up; also run lazily on the first request when no lifespan ran (ASGITransport)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                self.sessions.restore()
                self._started = True

    async def aclose(self) -> None:
        await self.sessions.shutdown()
        await self.webhooks.aclose()
        self._started = False

    async def reset(self) -> None:
        await self.sessions.reset()
        await self.webhooks.reset()
        self.faults = Faults()
        self.calls.entries.clear()
        self.files.clear()


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    config = config or EmulatorConfig.from_env()
    config, generated = config.with_generated_key()
    if generated:
        # Like WAHA: no key configured -> a random one, printed so the operator can use it.
        print(f"WAHA_API_KEY={config.api_key}  (generated; set WAHA_API_KEY to choose one)",
              flush=True)
    emulator = Emulator(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await emulator.ensure_started()
        try:
            yield
        finally:
            await emulator.aclose()

    app = FastAPI(title="WAHA emulator", version=config.version, lifespan=lifespan,
                  docs_url="/", redoc_url=None, openapi_url="/openapi.json")
    app.state.emulator = emulator
    install_error_handlers(app, emulator.environment)
    for module in (routes_server, routes_sessions, routes_auth, routes_messages, routes_chats, routes_actions,
                   routes_contacts, routes_groups, routes_files, routes_control, routes_control_chat,
                   routes_control_directory):
        app.include_router(module.router)
    app.add_middleware(ApiMiddleware, emulator=emulator)
    return app
