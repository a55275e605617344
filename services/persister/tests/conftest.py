"""Builders of the events and queries the persister sees, and a Store on a fresh database."""

import itertools

import pytest
from pymongo import AsyncMongoClient, monitoring

from fleet_shared.contracts import deterministic_id, envelope
from fleet_shared.contracts.events import MessageAck, MessageReceived, MessageSent
from persister.store import Store

_seq = itertools.count(1)
CHAT, ME, TS = "111@c.us", "999@c.us", 1_700_000_000


class Events:
    """Envelopes as webhook-ingest and the orchestrator publish them (same deterministic ids)."""

    @staticmethod
    def received(user: str, wa_id: str | None = None, *, chat: str = CHAT, ts: int = TS, body: str = "hi", **kw):
        wa_id = wa_id or f"false_{chat}_{next(_seq)}"
        data = MessageReceived(
            id=wa_id, chat_id=chat, from_me=False, from_=chat, to=ME, body=body, timestamp=ts, **kw
        )
        return envelope(data, user, id=deterministic_id(user, "message", wa_id))

    @staticmethod
    def sent(
        user: str, wa_id: str | None = None, *, chat: str = CHAT, ts: int = TS, body: str = "yo", ack: int | None = 1, **kw
    ):
        wa_id = wa_id or f"true_{chat}_{next(_seq)}"
        data = MessageSent(
            id=wa_id, chat_id=chat, from_me=True, from_=ME, to=chat, body=body, timestamp=ts, ack=ack, **kw
        )
        return envelope(data, user, id=deterministic_id(user, "message", wa_id))

    @staticmethod
    def ack(user: str, wa_id: str, ack: int, *, chat: str = CHAT):
        data = MessageAck(id=wa_id, chat_id=chat, ack=ack)
        return envelope(data, user, id=deterministic_id(user, "ack", wa_id, str(ack)))


@pytest.fixture
def events() -> type[Events]:
    return Events


@pytest.fixture
async def store(mongo_db) -> Store:
    s = Store(mongo_db)
    await s.ensure_indexes()
    return s


class CommandLog(monitoring.CommandListener):
    """The commands a client sent: (name, collection)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted(mongodb_url, mongo_db):
    """The test's database through a client of its own that logs every command it sends."""
    log = CommandLog()
    client: AsyncMongoClient = AsyncMongoClient(mongodb_url, event_listeners=[log])
    yield client[mongo_db.name], log
    await client.close()
