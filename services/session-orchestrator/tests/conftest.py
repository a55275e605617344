"""Integration harness: the orchestrator app in-process (its real lifespan), the real RabbitMQ and
SecantusDB, and the WAHA emulator served over real HTTP on a free port.

Helpers are handed to tests through fixtures (test modules cannot import each other here).
"""

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aio_pika
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from fleet_devtools.localdev import wait_until
from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.broker import RpcClient
from fleet_shared.contracts import Contract, Envelope, Reply, deterministic_id, envelope
from fleet_shared.contracts.admin import AdminGetSession
from fleet_shared.contracts.commands import COMMAND_TYPES, GetQr, GetSession
from fleet_shared.contracts.events import SessionStatusReported
from fleet_shared.ids import session_name_for
from fleet_shared.mongo import make_mongo_client
from fleet_shared.routing import admin_key, user_key
from fleet_shared.topology import USER_ID_HEADER, Topology, declare_topology_at
from session_orchestrator.adapters.mongo_registry import MongoSessionRegistry
from session_orchestrator.adapters.mongo_sends import MongoSendLedger
from session_orchestrator.app import create_app
from session_orchestrator.config import Settings
from waha_emulator import EmulatorConfig
from waha_emulator import create_app as create_emulator
from waha_emulator.testing import WebhookReceiver

WAHA_KEY = "test-waha-api-key-0123456789"
HMAC_KEY = "test-webhook-hmac-key-0123456789"
REQUEST_TIMEOUT = 10.0


# ---- serving an ASGI app on a real port, inside the test's event loop ------------------------


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # leave pytest's signal handlers alone
        yield


class AsgiServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: _QuietServer | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "AsgiServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self._server = _QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))

        async def started() -> bool:
            if self._task.done():
                self._task.result()
            return self._server.started

        await wait_until(started, 10, what="the HTTP server to start")
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 15)


class SlowSessions:
    """ASGI wrapper that holds every WAHA API request about some sessions for `delay` seconds,
    and counts requests as they arrive (so a test knows a slow call is under way). Requests about
    the `failing` sessions are answered 503 instead (as an overloaded WAHA does)."""

    def __init__(self, app: Any, sessions: set[str], delay: float, failing: set[str] | None = None) -> None:
        self.app = app
        self.sessions = sessions
        self.delay = delay
        self.failing = failing if failing is not None else set()
        self.arrived: dict[str, int] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            for name in self.sessions:
                if f"/{name}" in scope["path"]:
                    self.arrived[name] = self.arrived.get(name, 0) + 1
                    await asyncio.sleep(self.delay)
            for name in self.failing:
                if f"/{name}" in scope["path"]:
                    self.arrived[name] = self.arrived.get(name, 0) + 1
                    body = json.dumps({"statusCode": 503, "message": "Service Unavailable"}).encode()
                    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 503, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


# ---- WAHA emulator ---------------------------------------------------------------------------


class Waha:
    """The emulator behind a real port, with its control API."""

    def __init__(self, server: AsgiServer, slow: "SlowSessions | None" = None) -> None:
        self.server = server
        self.slow = slow
        self.http = httpx.AsyncClient(base_url=server.url, headers={"X-Api-Key": WAHA_KEY}, timeout=10)

    @property
    def url(self) -> str:
        return self.server.url

    async def calls(self, method: str | None = None, path: str | None = None, session: str | None = None) -> list[dict]:
        params = {k: v for k, v in {"method": method, "path": path, "session": session}.items() if v}
        r = await self.http.get("/_emulator/calls", params=params)
        r.raise_for_status()
        return r.json()

    async def session(self, name: str) -> dict:
        r = await self.http.get(f"/api/sessions/{name}")
        r.raise_for_status()
        return r.json()

    async def scan(self, name: str, phone: str) -> None:
        r = await self.http.post(f"/_emulator/sessions/{name}/scan", json={"phone": phone})
        assert r.status_code == 201, r.text

    async def sent(self, name: str) -> list[dict]:
        r = await self.http.get(f"/_emulator/sessions/{name}/sent")
        r.raise_for_status()
        return r.json()

    async def status_events(self, name: str) -> list[dict]:
        """Every `session.status` webhook envelope the emulator emitted for `name`, oldest first."""
        r = await self.http.get("/_emulator/events", params={"session": name, "event": "session.status"})
        r.raise_for_status()
        return r.json()

    async def faults(self, **faults: Any) -> None:
        r = await self.http.post("/_emulator/faults", json=faults)
        assert r.status_code == 201, r.text


def emulator_config(**overrides: Any) -> EmulatorConfig:
    return EmulatorConfig(
        api_key=WAHA_KEY,
        qr_first_lifetime=60.0,
        qr_next_lifetime=20.0,
        starting_delay=0.05,
        send_wait_timeout=0.5,
        qr_wait_timeout=0.5,
        ack_delay=0.05,
        webhook_timeout=2.0,
        log_level="warning",
        store_default=False,  # as NOWEB: a session keeps a store only when its config asks for one
    ).override(**overrides)


@pytest.fixture
async def db(mongodb_url, mongo_db):
    """The test database through the client the service uses (tz-aware, majority writes)."""
    client = make_mongo_client(mongodb_url, "orchestrator-tests")
    yield client[mongo_db.name]
    await client.close()


@pytest.fixture
async def registry(db) -> MongoSessionRegistry:
    """The orchestrator's registry on the test database (to prepare a scenario or look at it)."""
    r = MongoSessionRegistry(db)
    await r.ensure_indexes()
    return r


@pytest.fixture
async def webhook_sink() -> AsyncIterator[WebhookReceiver]:
    """Where the emulator's webhooks go (webhook-ingest's place); records them."""
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
async def make_waha() -> AsyncIterator[Callable[..., Awaitable[Waha]]]:
    made: list[Waha] = []

    async def make(
        slow_sessions: set[str] = frozenset(), delay: float = 0.0, failing_sessions: set[str] = frozenset(), **config: Any
    ) -> Waha:
        """An emulator; calls about `slow_sessions` each take `delay` seconds longer, calls about
        `failing_sessions` are answered 503 (until removed from `waha.slow.failing`)."""
        app = create_emulator(emulator_config(**config))
        wrapped = slow_sessions or failing_sessions
        slow = SlowSessions(app, set(slow_sessions), delay, set(failing_sessions)) if wrapped else None
        server = await AsgiServer(slow or app).start()
        waha = Waha(server, slow)
        made.append(waha)
        return waha

    yield make
    for waha in made:
        await waha.http.aclose()
        await waha.server.stop()


@pytest.fixture
async def waha(make_waha) -> Waha:
    return await make_waha()


# ---- the orchestrator and the broker around it -----------------------------------------------


class EventTap:
    """A private queue bound to `<p>.events` with one binding key; collects envelopes."""

    def __init__(self) -> None:
        self.received: list[dict] = []

    def of_type(self, type_: str) -> list[dict]:
        return [e for e in self.received if e["type"] == type_]

    async def wait_for(self, type_: str, predicate: Callable[[dict], bool] = lambda e: True, timeout: float = 10.0) -> dict:
        async def found() -> dict | None:
            return next((e for e in self.of_type(type_) if predicate(e)), None)

        return await wait_until(found, timeout, what=f"a {type_} event")


class Orchestrator:
    """The orchestrator under test and a client's view of it: commands and queries over RabbitMQ."""

    def __init__(self, app: Any, settings: Settings, topology: Topology, rpc: RpcClient, connection: aio_pika.abc.AbstractRobustConnection, waha: Waha, lifespan: contextlib.AsyncExitStack | None = None) -> None:
        self._lifespan = lifespan
        self.app = app
        self.settings = settings
        self.topology = topology
        self.rpc = rpc
        self.connection = connection
        self.waha = waha
        self.ops = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orchestrator")

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def stop(self) -> None:
        """Shut the orchestrator down as SIGTERM does (its lifespan ends); the client side stays."""
        if self._lifespan is not None:
            await self._lifespan.aclose()

    async def ask_admin(self, payload: Contract, *, as_user: str = "ops", timeout: float = REQUEST_TIMEOUT) -> Reply:
        """A fleet-wide admin query (`system.admin.<type>`), asked by `as_user`."""
        env = envelope(payload, as_user, correlation_id=str(uuid.uuid4()))
        return await self.rpc.request(self.topology.queries, env, timeout, routing_key=admin_key(payload.TYPE))

    async def record(self, user_id: str) -> dict:
        """The user's admin record (`session.admin_get`)."""
        reply = await self.ask(AdminGetSession(), user_id)
        assert reply.ok, reply
        return reply.data

    async def ask(self, payload: Contract, user_id: str, *, id: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Reply:
        exchange = self.topology.commands if payload.TYPE in COMMAND_TYPES else self.topology.queries
        env = envelope(payload, user_id, id=id, session=session_name_for(user_id), correlation_id=str(uuid.uuid4()))
        return await self.rpc.request(exchange, env, timeout)

    async def status(self, user_id: str) -> dict:
        reply = await self.ask(GetSession(), user_id)
        assert reply.ok, reply
        return reply.data

    async def publish(self, exchange: str, env: Envelope | dict, *, routing_key: str | None = None, reply_to: str | None = None) -> None:
        """Publish as the other services do (persistent, x-user-id header), or anything at all."""
        channel = await self.connection.channel(publisher_confirms=True)
        try:
            body = env.wire() if isinstance(env, Envelope) else env
            user_id = body["userId"]
            message = aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                message_id=body["id"],
                headers={USER_ID_HEADER: user_id},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                reply_to=reply_to,
            )
            target = await channel.get_exchange(exchange, ensure=False)
            await target.publish(message, routing_key=routing_key or user_key(user_id, body["type"]))
        finally:
            await channel.close()

    async def request_raw(
        self, body: dict, *, routing_key: str, timeout: float = REQUEST_TIMEOUT, exchange: str | None = None
    ) -> dict:
        """A command (or, on `exchange`, anything) with any body and routing key, answered through direct reply-to."""
        channel = await self.connection.channel()
        try:
            answer: asyncio.Future = asyncio.get_running_loop().create_future()

            async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                if not answer.done():
                    answer.set_result(json.loads(message.body))

            reply_queue = await channel.declare_queue("amq.rabbitmq.reply-to", passive=True)
            await reply_queue.consume(on_reply, no_ack=True)
            target = await channel.get_exchange(exchange or self.topology.commands, ensure=False)
            message = aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                message_id=str(body.get("id")),
                correlation_id=str(uuid.uuid4()),
                headers={USER_ID_HEADER: str(body.get("userId"))},
                reply_to="amq.rabbitmq.reply-to",
            )
            await target.publish(message, routing_key=routing_key)
            return await asyncio.wait_for(answer, timeout)
        finally:
            await channel.close()

    async def dead_letters(self) -> int:
        """Messages in the dead-letter queues of the command partitions."""
        channel = await self.connection.channel()
        try:
            total = 0
            for name in self.topology.orchestrator_command_queues:
                queue = await channel.declare_queue(self.topology.dead_letter_queue(name), passive=True)
                total += queue.declaration_result.message_count or 0
            return total
        finally:
            await channel.close()

    async def tap(self, binding: str) -> EventTap:
        tap = EventTap()
        channel = await self.connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.topology.events, binding)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                tap.received.append(json.loads(message.body))

        await queue.consume(on_message)
        return tap

    async def report_from_waha(self, user_id: str, *, only_last: bool = False) -> list[dict]:
        """Do webhook-ingest's job for `session.status`: turn the emulator's webhooks into
        `session.status_reported` envelopes on `<p>.events`, oldest first."""
        hooks = await self.waha.status_events(session_name_for(user_id))
        if only_last:
            hooks = hooks[-1:]
        for hook in hooks:
            me = hook.get("me") or {}
            phone = me.get("id", "").removesuffix("@c.us") or None
            report = SessionStatusReported(
                status=hook["payload"]["status"],
                phone_number=phone,
                push_name=me.get("pushName"),
                reported_at_ms=hook["timestamp"],
                waha_event_id=hook["id"],
            )
            await self.report(user_id, report)
        return hooks

    async def report(self, user_id: str, report: SessionStatusReported) -> None:
        """Publish a `session.status_reported` as webhook-ingest does."""
        await self.publish(self.topology.events, status_report_envelope(user_id, report))

    async def wait_status(self, user_id: str, status: str, timeout: float = 10.0) -> dict:
        async def reached() -> dict | None:
            view = await self.status(user_id)
            return view if view["status"] == status else None

        return await wait_until(reached, timeout, what=f"{user_id}'s registry status {status}")

    async def link(self, user_id: str, phone: str) -> dict:
        """QR, scan on the 'phone', WAHA's status webhooks reported: the user is WORKING."""
        reply = await self.ask(GetQr(), user_id)
        assert reply.ok and reply.data["status"] == "SCAN_QR_CODE", reply
        await self.waha.scan(session_name_for(user_id), phone)
        await wait_until(
            lambda: self.waha_last_status(user_id, "WORKING"), 10, what=f"WAHA's WORKING webhook of {user_id}"
        )
        await self.report_from_waha(user_id)
        return await self.wait_status(user_id, "WORKING")

    async def waha_last_status(self, user_id: str, status: str) -> bool:
        hooks = await self.waha.status_events(session_name_for(user_id))
        return bool(hooks) and hooks[-1]["payload"]["status"] == status


def status_report_envelope(user_id: str, report: SessionStatusReported) -> Envelope:
    return envelope(
        report,
        user_id,
        id=deterministic_id(user_id, "waha-event", report.waha_event_id),
        session=session_name_for(user_id),
        correlation_id=report.waha_event_id,
    )


def orchestrator_settings(topology: Topology, rabbitmq_url: str, mongodb_url: str, database: str, waha_url: str, webhook_url: str, **overrides: Any) -> Settings:
    values = dict(
        environment="dev",
        rabbitmq_url=rabbitmq_url,
        broker_prefix=topology.prefix,
        orchestrator_partitions=topology.partitions,
        request_timeout=timedelta(seconds=REQUEST_TIMEOUT),
        mongodb_url=mongodb_url,
        mongodb_database=database,
        waha_url=waha_url,
        waha_api_key=WAHA_KEY,
        webhook_url=webhook_url,
        webhook_hmac_key=HMAC_KEY,
        waha_attempts=3,
        waha_backoff_base=timedelta(milliseconds=50),
        waha_backoff_max=timedelta(milliseconds=500),
        qr_poll_interval=timedelta(milliseconds=50),
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_orchestrator(rabbitmq_url, mongodb_url, mongo_db, webhook_sink) -> AsyncIterator[Callable[..., Awaitable[Orchestrator]]]:
    stack = contextlib.AsyncExitStack()

    async def make(topology: Topology, waha: Waha, **overrides: Any) -> Orchestrator:
        settings = orchestrator_settings(
            topology, rabbitmq_url, mongodb_url, mongo_db.name, waha.url, webhook_sink.url, **overrides
        )
        app = create_app(settings)
        lifespan = contextlib.AsyncExitStack()
        await lifespan.enter_async_context(LifespanManager(app, startup_timeout=30, shutdown_timeout=30))
        stack.push_async_callback(lifespan.aclose)
        rpc = RpcClient(rabbitmq_url, topology, "orchestrator-tests")
        await rpc.connect()
        stack.push_async_callback(rpc.close)
        connection = await aio_pika.connect_robust(rabbitmq_url)
        stack.push_async_callback(connection.close)
        orchestrator = Orchestrator(app, settings, topology, rpc, connection, waha, lifespan)
        stack.push_async_callback(orchestrator.ops.aclose)
        return orchestrator

    yield make
    await stack.aclose()


@pytest.fixture
async def orchestrator(topology, waha, make_orchestrator) -> Orchestrator:
    # (make_orchestrator last: set up last, torn down first, before its queues and its WAHA go)
    return await make_orchestrator(topology, waha)


@pytest.fixture
async def single_partition(rabbitmq_url) -> AsyncIterator[Topology]:
    """A topology with ONE partition: every user shares one single-active-consumer queue."""
    topo = Topology(f"t{uuid.uuid4().hex[:10]}", partitions=1)
    await declare_topology_at(rabbitmq_url, topo)
    yield topo
    await delete_topology(rabbitmq_url, topo)


@pytest.fixture
async def ledger(db) -> MongoSendLedger:
    """The orchestrator's send ledger on the test database."""
    sends = MongoSendLedger(db)
    await sends.ensure_indexes()
    return sends
