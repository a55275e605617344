"""Issue 3, point 7: operators' reads (list, count by status, one record) and the sessions gauges."""

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import envelope
from fleet_shared.contracts.admin import AdminCountSessions, AdminGetSession, AdminListSessions
from fleet_shared.contracts.commands import GetQr, StopSession

pytestmark = pytest.mark.integration


async def test_list_count_and_record(orchestrator):
    await orchestrator.link("alice", phone="15550001111")
    assert (await orchestrator.ask(GetQr(), "bob")).ok
    await orchestrator.report_from_waha("bob")
    await orchestrator.wait_status("bob", "SCAN_QR_CODE")
    assert (await orchestrator.ask(StopSession(), "carol")).ok  # a record, never a session

    running = await orchestrator.ask_admin(AdminListSessions())
    assert running.ok, running
    assert [(s["userId"], s["session"], s["status"]) for s in running.data] == [
        ("alice", "wf_alice", "WORKING"),
        ("bob", "wf_bob", "SCAN_QR_CODE"),
    ]
    assert all(set(s) == {"userId", "session", "status", "lastActivity"} and s["lastActivity"] for s in running.data)
    every = await orchestrator.ask_admin(AdminListSessions(all=True))
    assert [s["userId"] for s in every.data] == ["alice", "bob", "carol"]
    working = await orchestrator.ask_admin(AdminListSessions(status="WORKING"))
    assert [s["userId"] for s in working.data] == ["alice"]
    assert len((await orchestrator.ask_admin(AdminListSessions(all=True, limit=1))).data) == 1

    count = await orchestrator.ask_admin(AdminCountSessions())
    assert count.ok and count.data == {
        "count": 3,
        "byStatus": {"STOPPED": 1, "STARTING": 0, "SCAN_QR_CODE": 1, "WORKING": 1, "FAILED": 0},
        "running": 2,
        "maxSessions": orchestrator.settings.max_sessions,
    }

    record = await orchestrator.record("alice")
    assert record["userId"] == "alice" and record["status"] == "WORKING"
    assert record["phoneNumber"] == "15550001111" and record["desired"] == "running"
    assert [h["status"] for h in record["statusHistory"]] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    assert record["createdAt"] and record["updatedAt"] and record["lastActivity"]

    unknown = await orchestrator.ask(AdminGetSession(), "nobody")
    assert (unknown.error.code, unknown.error.status) == ("not_found", 404)
    assert await orchestrator.runtime.registry.get("nobody") is None


async def test_admin_reads_are_not_activity(orchestrator):
    assert (await orchestrator.ask(GetQr(), "dave")).ok
    before = (await orchestrator.runtime.registry.get("dave"))["lastActivity"]
    await orchestrator.record("dave")
    await orchestrator.ask_admin(AdminListSessions(all=True))
    await orchestrator.ask_admin(AdminCountSessions())
    await orchestrator.status("dave")
    assert (await orchestrator.runtime.registry.get("dave"))["lastActivity"] == before


async def test_an_admin_query_whose_key_does_not_match_its_type_is_refused(orchestrator):
    forged = envelope(AdminCountSessions(), "ops").wire()
    reply = await orchestrator.request_raw(
        forged, routing_key="system.admin.sessions.list", exchange=orchestrator.topology.queries
    )
    assert (reply["error"]["code"], reply["error"]["status"]) == ("invalid_message", 400)


async def test_the_gauges_count_sessions_by_status(orchestrator):
    await orchestrator.link("erin", phone="15550005555")
    assert (await orchestrator.ask(GetQr(), "fred")).ok

    async def scraped() -> str | None:
        text = (await orchestrator.ops.get("/metrics")).text
        return text if 'orchestrator_sessions{status="WORKING"} 1.0' in text else None

    text = await wait_until(scraped, 10, what="the WORKING gauge")
    assert "orchestrator_sessions_running" in text
    assert f"orchestrator_session_limit {float(orchestrator.settings.max_sessions)}" in text
