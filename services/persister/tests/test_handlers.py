"""Delivery bodies -> events, and what the handler does when MongoDB cannot take a write."""

import json
import time

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from fleet_devtools.localdev import free_port
from fleet_shared.contracts import envelope
from fleet_shared.contracts.events import SessionStatusChanged
from persister.handlers import EventHandler, MalformedEvent, parse_event
from persister.store import Store, StoreUnavailable


def body(env) -> bytes:
    return json.dumps(env.wire()).encode()


def test_valid_events_parse(events):
    for env in (events.received("alice", "w1"), events.sent("alice", "w2"), events.ack("alice", "w2", 3)):
        parsed = parse_event(body(env), f"user.alice.{env.type}")
        assert parsed.id == env.id and parsed.data == env.data


def test_malformed_events_are_refused(events):
    good = events.received("alice", "w1").wire()
    bad_bodies = [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({**good, "type": "message.deleted"}).encode(),
        json.dumps({**good, "data": {"id": "w1"}}).encode(),
        json.dumps({**good, "userId": "has.dot"}).encode(),
        json.dumps({**good, "version": 99}).encode(),
        body(envelope(SessionStatusChanged(status="WORKING"), "alice")),  # routed here by mistake
    ]
    for raw in bad_bodies:
        with pytest.raises(MalformedEvent):
            parse_event(raw, "user.alice.message.received")
    with pytest.raises(MalformedEvent):
        parse_event(json.dumps(good).encode(), "user.bob.message.received")  # key names another user
    with pytest.raises(MalformedEvent):
        parse_event(json.dumps(good).encode(), "user.alice.message.ack")


async def test_unreachable_mongodb_raises_after_retrying(events):
    """Nothing listens on the port: the handler retries until its deadline, then gives up loudly."""
    client = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=100)
    try:
        handler = EventHandler(Store(client.db), retry_timeout=1.0, backoff=0.05, max_backoff=0.1)
        failures_before = REGISTRY.get_sample_value("persister_write_failures_total") or 0
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await handler.handle([events.received("alice", "w1")])
        assert time.monotonic() - started >= 1.0
        assert REGISTRY.get_sample_value("persister_write_failures_total") - failures_before >= 2
    finally:
        await client.close()
