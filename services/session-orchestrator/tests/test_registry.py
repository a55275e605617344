"""The registry and the send ledger on a real MongoDB-wire server (SecantusDB)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from session_orchestrator.adapters import mongo_registry as registry_module
from session_orchestrator.adapters.mongo_registry import MongoSessionRegistry
from session_orchestrator.domain.records import view_of
from session_orchestrator.domain.statuses import (
    STOPPED,
    StatusReport,
    decide_report,
)
from session_orchestrator.handlers.admission import Admission

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def apply(registry: MongoSessionRegistry, user: str, status: str, at: int, phone: str | None = None) -> bool:
    previous = await registry.state(user)
    decision = decide_report(previous, StatusReport(status, at, phone))
    if not decision.apply:
        return False
    assert await registry.apply_report(user, previous, decision, T0 + timedelta(milliseconds=at))
    return True


async def test_indexes_are_idempotent(registry):
    await registry.ensure_indexes()


async def test_touch_creates_one_document_and_records_activity(registry, db):
    doc = await registry.touch("alice", T0)
    assert doc["userId"] == "alice" and doc["session"] == "wf_alice" and doc["status"] == STOPPED
    later = T0 + timedelta(minutes=5)
    doc = await registry.touch("alice", later)
    assert doc["lastActivity"] == later and doc["createdAt"] == T0
    assert await db["sessions"].count_documents({"userId": "alice"}) == 1
    view = view_of("alice", await registry.get("alice"))
    assert view.last_activity == later.isoformat()


async def test_a_send_writes_its_activity_once_per_precision_and_reads_the_record_otherwise(db, registry):
    coalescing = MongoSessionRegistry(db, activity_precision=timedelta(minutes=1))
    first = await coalescing.touch_send("ines", T0)  # nothing known: a command's touch, the record created
    assert first["status"] == STOPPED and (await registry.get("ines"))["lastActivity"] == T0
    await apply(registry, "ines", "WORKING", 1_000, "15550001111")

    doc = await coalescing.touch_send("ines", T0 + timedelta(seconds=30))  # within a minute of T0: read only
    assert (doc["status"], doc["phoneNumber"], doc["lastError"]) == ("WORKING", "15550001111", None)
    assert (await registry.get("ines"))["lastActivity"] == T0
    doc = await coalescing.touch_send("ines", T0 + timedelta(seconds=61))
    assert doc["status"] == "WORKING" and (await registry.get("ines"))["lastActivity"] == T0 + timedelta(seconds=61)
    # Another process knows nothing it wrote: it writes.
    await MongoSessionRegistry(db, activity_precision=timedelta(minutes=1)).touch_send("ines", T0 + timedelta(seconds=70))
    assert (await registry.get("ines"))["lastActivity"] == T0 + timedelta(seconds=70)


async def test_message_activity_is_written_once_per_precision_and_never_backwards(db, registry):
    coalescing = MongoSessionRegistry(db, activity_precision=timedelta(minutes=1))
    await coalescing.touch("hana", T0)  # a command: lastActivity T0, written

    async def stored() -> datetime:
        return (await registry.get("hana"))["lastActivity"]

    assert not await coalescing.note_activity("hana", T0 + timedelta(seconds=30))  # within a minute of T0
    assert await stored() == T0
    assert await coalescing.note_activity("hana", T0 + timedelta(seconds=61))
    assert await stored() == T0 + timedelta(seconds=61)
    assert not await coalescing.note_activity("hana", T0 + timedelta(seconds=10))  # late, older: never backwards
    assert await coalescing.note_activity("hana", T0 + timedelta(minutes=5))
    assert await stored() == T0 + timedelta(minutes=5)
    # Another replica moved it further: nothing this one skips can take it back.
    await registry.note_activity("hana", T0 + timedelta(minutes=9))
    assert await coalescing.note_activity("hana", T0 + timedelta(minutes=7)) is True  # $max: a no-op write
    assert await stored() == T0 + timedelta(minutes=9)
    assert not await coalescing.note_activity("nobody", T0)  # activity creates no record
    assert await registry.get("nobody") is None
    # A record made later (here by another replica, without lastActivity) takes the next message.
    await registry.mark_admitted("nobody", T0)
    assert await coalescing.note_activity("nobody", T0 + timedelta(seconds=30))
    assert (await registry.get("nobody"))["lastActivity"] == T0 + timedelta(seconds=30)


async def test_the_activity_memory_is_bounded_and_forgets_the_least_recent_first(db, monkeypatch):
    monkeypatch.setattr(registry_module, "ACTIVITY_MEMORY", 10)
    coalescing = MongoSessionRegistry(db, activity_precision=timedelta(minutes=1))
    for n in range(12):
        await coalescing.touch(f"u{n}", T0)
    await coalescing.touch("u0", T0)  # written again: now the most recent
    await coalescing.touch("u12", T0)
    stored = MongoSessionRegistry(db)
    # u0 is still known (no write within the minute); u1, written longest ago, is not (a write).
    assert not await coalescing.note_activity("u0", T0 + timedelta(seconds=30))
    assert await coalescing.note_activity("u1", T0 + timedelta(seconds=30))
    assert (await stored.get("u1"))["lastActivity"] == T0 + timedelta(seconds=30)
    assert len(coalescing._activity_written) <= 10


class CountingPauses(MongoSessionRegistry):
    """The real registry, whose counts wait for `go` (so a request can give up mid-decision)."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.counting, self.go = asyncio.Event(), asyncio.Event()

    async def count_running(self, **kwargs) -> int:
        self.counting.set()
        await self.go.wait()
        return await super().count_running(**kwargs)


async def test_a_request_given_up_during_the_count_takes_no_slot_and_fails_nobody_else(db):
    registry = CountingPauses(db)
    admission = Admission(registry, max_sessions=2, clock=lambda: T0)
    asking = {user: asyncio.create_task(admission.admit(user)) for user in ("a", "b", "c")}
    await asyncio.wait_for(registry.counting.wait(), 5)
    asking["b"].cancel()
    registry.go.set()
    assert await asking["a"] is None and await asking["c"] is None  # two slots, two admitted
    with pytest.raises(asyncio.CancelledError):
        await asking["b"]
    assert await registry.get("b") is None
    await admission.close()


async def test_closing_cancels_the_requests_not_decided_yet(db):
    registry = CountingPauses(db)
    admission = Admission(registry, max_sessions=2, clock=lambda: T0)
    waiting = asyncio.create_task(admission.admit("a"))
    await asyncio.wait_for(registry.counting.wait(), 5)
    await admission.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await registry.get("a") is None

