"""Builders of WAHA webhooks (shaped as in docs/waha.md#webhook-envelope) and an in-process app."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager

from fleet_shared.ids import session_name_for
from fleet_shared.waha import session_webhook_key, signed_headers
from webhook_ingest.app import create_app
from webhook_ingest.config import Settings

KEY = "test-webhook-hmac-key"
EVENT_TS_MS = 1_741_249_702_485
MESSAGE_TS_S = 1_741_249_700


class Waha:
    """Builds webhook bodies like WAHA's, for a session of one of our users (or any session)."""

    key = KEY

    @staticmethod
    def webhook(event: str, payload: Any, *, user_id: str | None = "alice", session: str | None = None,
                event_id: str = "evt_01jyewpavw2ns6gc9j48ta562t", timestamp: int = EVENT_TS_MS,
                me: dict | None = None, metadata: dict | None | str = "auto") -> dict:
        if metadata == "auto":
            metadata = {"fleet.userId": user_id} if user_id is not None else None
        if session is None:
            session = session_name_for(user_id) if user_id is not None else "default"
        return {
            "id": event_id,
            "timestamp": timestamp,
            "event": event,
            "session": session,
            "metadata": metadata,
            "me": me if me is not None else {"id": "79111111111@c.us", "pushName": "Shop"},
            "payload": payload,
            "engine": "NOWEB",
            "environment": {"version": "2026.7.1", "engine": "NOWEB", "tier": "CORE", "browser": None},
        }

    @staticmethod
    def message(*, from_me: bool = False, peer: str = "11111111111@c.us", me: str = "79111111111@c.us",
                raw_id: str = "AAAAAAAAAAAAAAAAAAAA", body: str = "hi", **extra: Any) -> dict:
        chat = peer
        return {
            "id": f"{'true' if from_me else 'false'}_{chat}_{raw_id}",
            "timestamp": MESSAGE_TS_S,
            "from": me if from_me else peer,
            "to": peer if from_me else me,
            "fromMe": from_me,
            "source": "api" if from_me else "app",
            "participant": None,
            "author": None,
            "body": body,
            "hasMedia": False,
            "media": None,
            "ack": 1 if from_me else None,
            "ackName": "SERVER" if from_me else "UNKNOWN",
            "location": None,
            "vCards": [],
            "replyTo": None,
            "_data": {},
            **extra,
        }

    @staticmethod
    def ack(*, message_id: str = "true_11111111111@c.us_AAA", ack: int = 3, ack_name: str = "READ") -> dict:
        return {"id": message_id, "from": "11111111111@c.us", "to": "79111111111@c.us", "participant": None,
                "fromMe": True, "ack": ack, "ackName": ack_name, "_data": {}}

    @staticmethod
    def status(status: str = "WORKING", name: str = "wf_alice") -> dict:
        return {"name": name, "status": status,
                "statuses": [{"status": "STARTING", "timestamp": EVENT_TS_MS - 2000},
                             {"status": "SCAN_QR_CODE", "timestamp": EVENT_TS_MS - 1000},
                             {"status": status, "timestamp": EVENT_TS_MS}], "data": None}

    @staticmethod
    def encode(body: dict | bytes) -> bytes:
        return body if isinstance(body, bytes) else json.dumps(body).encode()

    @classmethod
    def headers(cls, raw: bytes, key: str | None = None) -> dict[str, str]:
        return {
            "x-webhook-request-id": "req-1",
            "x-webhook-timestamp": str(EVENT_TS_MS),
            **signed_headers(key or cls.key, raw),
            "user-agent": "WAHA/2026.7.1",
        }

    @classmethod
    async def post(cls, client: httpx.AsyncClient, body: dict | bytes, *, key: str | None = None,
                   headers: dict[str, str] | None = None, session: str | None = None) -> httpx.Response:
        """POST as WAHA does for `session` (by default the body's): to its path, signed with its key
        (derived from `key`, the fleet key)."""
        raw = cls.encode(body)
        session = session or (body.get("session") if isinstance(body, dict) else None) or "wf_alice"
        signing = session_webhook_key(key or cls.key, session)
        return await client.post(f"/webhooks/waha/{session}", content=raw, headers={**cls.headers(raw, signing), **(headers or {})})


@pytest.fixture
def waha() -> type[Waha]:
    return Waha


# The webhooks built here carry fixed, long past timestamps: tests of the replay window set their own.
TIMELESS = timedelta(days=36_500)


def ingest_settings(rabbitmq_url: str, prefix: str = "wa", partitions: int = 4, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"webhook_max_age": TIMELESS, **overrides}
    return Settings(environment="dev", webhook_hmac_key=KEY, rabbitmq_url=rabbitmq_url, broker_prefix=prefix,
                    orchestrator_partitions=partitions, **values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with its lifespan (so its broker connection) running."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    return ingest_settings


@pytest.fixture
def run_app() -> Callable[[Settings], Any]:
    return running


@pytest.fixture
async def ingest(rabbitmq_url, topology) -> AsyncIterator[httpx.AsyncClient]:
    """webhook-ingest on the real broker, under the test's own topology."""
    async with running(ingest_settings(rabbitmq_url, topology.prefix, topology.partitions)) as client:
        yield client


@pytest.fixture
async def amqp(rabbitmq_url) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield await connection.channel()
