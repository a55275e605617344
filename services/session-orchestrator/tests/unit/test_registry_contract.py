"""The registry and the send ledger: the same contract on MongoDB and in memory.

Every test here runs on both adapters (`any_registry`, `any_ledger`), so the in-memory ones the unit
tier hands to `bootstrap()` keep the promises the MongoDB ones keep.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from session_orchestrator.domain.records import HISTORY_LENGTH, view_of
from session_orchestrator.domain.sending import Sending, fingerprint
from session_orchestrator.domain.statuses import (
    DESIRED_STOPPED,
    SCAN_QR_CODE,
    STARTING,
    STOPPED,
    WORKING,
    StatusReport,
    decide_report,
)
from session_orchestrator.handlers.admission import Admission, SessionLimitReached

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def apply(registry, user: str, status: str, at: int, phone: str | None = None) -> bool:
    previous = await registry.state(user)
    decision = decide_report(previous, StatusReport(status, at, phone))
    if not decision.apply:
        return False
    assert await registry.apply_report(user, previous, decision, T0 + timedelta(milliseconds=at))
    return True


async def test_touch_creates_one_record_and_records_activity(any_registry):
    registry = any_registry
    doc = await registry.touch("alice", T0)
    assert doc["userId"] == "alice" and doc["session"] == "wf_alice" and doc["status"] == STOPPED
    later = T0 + timedelta(minutes=5)
    doc = await registry.touch("alice", later)
    assert doc["lastActivity"] == later and doc["createdAt"] == T0
    assert [d["userId"] for d in await registry.list_records(None, 100)] == ["alice"]
    view = view_of("alice", await registry.get("alice"))
    assert view.last_activity == later.isoformat()


async def test_a_user_never_seen_is_stopped(any_registry):
    registry = any_registry
    assert await registry.get("nobody") is None
    view = view_of("nobody", None)
    assert (view.status, view.session, view.last_activity) == (STOPPED, "wf_nobody", None)


async def test_reports_apply_in_time_order_only(any_registry):
    registry = any_registry
    assert await apply(registry, "bob", STARTING, 1000)
    assert await apply(registry, "bob", WORKING, 3000, "15550001111")
    assert not await apply(registry, "bob", SCAN_QR_CODE, 2000)  # older, arrived late
    doc = await registry.get("bob")
    assert (doc["status"], doc["phoneNumber"], doc["lastReportedAtMs"]) == (WORKING, "15550001111", 3000)
    assert [h["status"] for h in doc["statusHistory"]] == [STARTING, WORKING]
    assert doc["lastChange"]["previousStatus"] == STARTING


async def test_a_stale_read_loses_the_race(any_registry):
    registry = any_registry
    await apply(registry, "carol", STARTING, 1000)
    previous = await registry.state("carol")
    await apply(registry, "carol", SCAN_QR_CODE, 2000)  # someone else got there first
    decision = decide_report(previous, StatusReport(WORKING, 3000))
    assert not await registry.apply_report("carol", previous, decision, T0)
    assert (await registry.get("carol"))["status"] == SCAN_QR_CODE


async def test_history_keeps_the_last_ten(any_registry):
    registry = any_registry
    statuses = [STARTING, SCAN_QR_CODE, WORKING]
    for i in range(25):
        await apply(registry, "dave", statuses[i % 3], 1000 + i)
    history = (await registry.get("dave"))["statusHistory"]
    assert len(history) == HISTORY_LENGTH
    assert history[-1]["reportedAtMs"] == 1024


async def test_errors_and_counts(any_registry):
    registry = any_registry
    await registry.record_error("erin", "WAHA down", T0)
    assert (await registry.get("erin"))["lastError"] == "WAHA down"
    await registry.clear_error("erin", T0)
    assert (await registry.get("erin"))["lastError"] is None
    await apply(registry, "frank", WORKING, 5)
    counts = await registry.count_by_status()
    assert counts[WORKING] == 1 and counts[STOPPED] == 1


async def test_send_claims(any_ledger):
    ledger = any_ledger
    fp = fingerprint("1@c.us", "hi", None)
    assert (await ledger.claim("alice", "key:k1", fp, "cmd-1", T0)).outcome == "claimed"
    assert (await ledger.claim("alice", "key:k1", fp, "cmd-2", T0)).outcome == "pending"
    assert (await ledger.claim("alice", "key:k1", fingerprint("1@c.us", "other", None), "cmd-3", T0)).outcome == "mismatch"
    # the same key of another user is another claim
    assert (await ledger.claim("bob", "key:k1", fp, "cmd-4", T0)).outcome == "claimed"
    await ledger.complete("alice", "key:k1", {"id": "true_1@c.us_X"}, T0)
    done = await ledger.claim("alice", "key:k1", fp, "cmd-5", T0)
    assert (done.outcome, done.result) == ("done", {"id": "true_1@c.us_X"})
    await ledger.release("bob", "key:k1")
    assert (await ledger.claim("bob", "key:k1", fp, "cmd-6", T0)).outcome == "claimed"


async def test_activity_from_messages_never_goes_backwards(any_registry):
    registry = any_registry
    await registry.touch("gina", T0)
    await registry.note_activity("gina", T0 + timedelta(minutes=3))
    await registry.note_activity("gina", T0 + timedelta(minutes=1))  # a late, older message
    assert (await registry.get("gina"))["lastActivity"] == T0 + timedelta(minutes=3)
    await registry.note_activity("nobody", T0)  # activity creates no record
    assert await registry.get("nobody") is None


async def test_running_sessions_and_admissions_hold_slots(any_registry):
    registry = any_registry
    await apply(registry, "a", WORKING, 10)
    await apply(registry, "b", SCAN_QR_CODE, 10)
    await apply(registry, "c", STOPPED, 10)
    await registry.mark_admitted("d", T0)  # admitted, WAHA's report not in yet
    assert await registry.count_running(exclude="x", admitted_since=T0 - timedelta(seconds=60)) == 3
    assert await registry.count_running(exclude="a", admitted_since=T0 - timedelta(seconds=60)) == 2
    # an old admission holds nothing
    assert await registry.count_running(exclude="x", admitted_since=T0 + timedelta(seconds=1)) == 2
    # WAHA's first report replaces the admission: a STOPPED one frees the slot
    await apply(registry, "d", STOPPED, 20)
    assert "admittedAt" not in await registry.get("d")
    assert await registry.count_running(exclude="x", admitted_since=T0 - timedelta(seconds=60)) == 2


async def test_idle_users(any_registry):
    registry = any_registry
    for user, status in (("idle", WORKING), ("busy", WORKING), ("stopped", STOPPED), ("told", WORKING)):
        await registry.touch(user, T0)
        await apply(registry, user, status, 10)
    await registry.touch("busy", T0 + timedelta(hours=2))
    await registry.set_desired("told", DESIRED_STOPPED, T0)  # already asked to stop
    assert await registry.idle_users(T0 + timedelta(hours=1), limit=10) == ["idle"]
    assert await registry.not_stopped() == {"idle": (WORKING, None), "busy": (WORKING, None), "told": (WORKING, DESIRED_STOPPED)}


async def test_a_record_for_an_adopted_session_starts_its_idle_clock_once(any_registry):
    registry = any_registry
    doc = await registry.ensure_record("hank", T0)
    assert (doc["lastActivity"], doc["status"], doc["statusHistory"]) == (T0, STOPPED, [])
    doc = await registry.ensure_record("hank", T0 + timedelta(hours=1))
    assert doc["lastActivity"] == T0


async def test_list_in_user_order(any_registry):
    registry = any_registry
    for user, status in (("zed", WORKING), ("amy", SCAN_QR_CODE), ("kim", STOPPED)):
        await apply(registry, user, status, 10)
    assert [d["userId"] for d in await registry.list_records(None, 10)] == ["amy", "kim", "zed"]
    assert [d["userId"] for d in await registry.list_records([WORKING, SCAN_QR_CODE], 10)] == ["amy", "zed"]
    assert [d["userId"] for d in await registry.list_records(None, 2)] == ["amy", "kim"]


async def test_the_status_view_reads_what_it_shows(any_registry):
    registry = any_registry
    await registry.touch("ivy", T0)
    await apply(registry, "ivy", WORKING, 10, "15550001111")
    assert await registry.view("ivy") == view_of("ivy", await registry.get("ivy"))
    assert await registry.view("nobody") == view_of("nobody", None)


async def test_several_users_excluded_and_which_of_them_hold_slots(any_registry):
    registry = any_registry
    since = T0 - timedelta(seconds=60)
    await apply(registry, "a", WORKING, 10)
    await apply(registry, "b", STOPPED, 10)
    await registry.mark_admitted("c", T0)
    await apply(registry, "d", WORKING, 10)
    await registry.mark_admitted("d", T0)  # running and admitted: one slot, counted once
    assert await registry.count_running(exclude="x", admitted_since=since) == 3
    assert await registry.count_running(exclude=["a", "c"], admitted_since=since) == 1
    assert await registry.holding_slots(["a", "b", "c", "d", "nobody"], admitted_since=since) == {"a", "c", "d"}
    assert await registry.holding_slots(["c"], admitted_since=T0 + timedelta(seconds=1)) == set()


async def test_admissions_asked_together_are_decided_as_one_at_a_time(any_registry):
    registry = any_registry
    await apply(registry, "old", WORKING, 10)
    await registry.mark_admitted("back", T0)  # admitted a moment ago, asks again: its own slot is not counted
    admission = Admission(registry, max_sessions=3, clock=lambda: T0 + timedelta(seconds=1))
    users = ["back", "n1", "n2", "n3"]
    outcomes = await asyncio.gather(*(admission.admit(u) for u in users), return_exceptions=True)
    assert [o is None for o in outcomes] == [True, True, False, False], outcomes
    assert all(isinstance(o, SessionLimitReached) and o.running == 3 for o in outcomes[2:])
    assert (await registry.get("n1"))["admittedAt"] == T0 + timedelta(seconds=1)
    assert await registry.get("n2") is None
    # The next one, alone, sees the same slots.
    with pytest.raises(SessionLimitReached):
        await admission.admit("n4")


async def test_a_claim_can_record_its_sending_attempt_in_the_same_write(any_ledger):
    ledger = any_ledger
    fp = fingerprint("1@c.us", "hi", None)
    assert (await ledger.claim("jo", "key:k", fp, "cmd-1", T0, sending=Sending("3EB0AA", 10))).outcome == "claimed"
    again = await ledger.claim("jo", "key:k", fp, "cmd-2", T0)
    assert (again.outcome, again.message_id, again.sending_at, again.tracked) == ("pending", "3EB0AA", T0, True)
    assert again.sending_until == T0 + timedelta(seconds=15)  # the budget plus SENDING_MARGIN
