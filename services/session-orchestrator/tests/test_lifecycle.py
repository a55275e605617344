"""Issue 3, points 1-2: every transition recorded and announced; start/stop/restart/logout/QR idempotent;
stop keeps the phone linked, logout unlinks it."""

import asyncio

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts.commands import GetQr, LogoutSession, RestartSession, StartSession, StopSession
from fleet_shared.routing import one_user_binding

pytestmark = pytest.mark.integration


async def _creates(orchestrator, session: str) -> list[dict]:
    return [c for c in await orchestrator.waha.calls(method="POST", path="/api/sessions") if c["session"] == session]


async def test_stop_keeps_the_phone_linked_and_the_next_start_needs_no_qr(orchestrator):
    await orchestrator.link("alice", phone="15550001111")

    for _ in range(2):  # stopping a stopped session is fine
        reply = await orchestrator.ask(StopSession(), "alice")
        assert reply.ok and reply.data == {"status": "STOPPED"}, reply
    await wait_until(lambda: orchestrator.waha_last_status("alice", "STOPPED"), 10, what="WAHA's STOPPED webhook")
    await orchestrator.report_from_waha("alice", only_last=True)
    view = await orchestrator.wait_status("alice", "STOPPED")
    assert view["phoneNumber"] == "15550001111"  # still linked

    reply = await orchestrator.ask(StartSession(), "alice")
    assert reply.ok and reply.data["status"] in ("STARTING", "WORKING"), reply
    # Nobody scans: the linked session comes back WORKING by itself.
    await wait_until(lambda: orchestrator.waha_last_status("alice", "WORKING"), 10, what="WORKING without a scan")
    await orchestrator.report_from_waha("alice", only_last=True)
    await orchestrator.wait_status("alice", "WORKING")
    assert (await orchestrator.ask(GetQr(), "alice")).data == {"status": "WORKING", "qr": None}
    assert len(await _creates(orchestrator, "wf_alice")) == 1


async def test_two_starts_are_one_session(orchestrator):
    replies = await asyncio.gather(*(orchestrator.ask(StartSession(), "bob") for _ in range(2)))
    assert all(r.ok for r in replies), replies
    assert [c["path"] for c in await orchestrator.waha.calls(method="POST", session="wf_bob")] == ["/api/sessions"]
    # ... and a start of a running session asks WAHA nothing but its status
    assert (await orchestrator.ask(StartSession(), "bob")).ok
    assert len(await orchestrator.waha.calls(method="POST", session="wf_bob")) == 1


async def test_logout_unlinks_the_phone_and_the_next_qr_is_a_new_one(orchestrator):
    await orchestrator.link("carol", phone="15550003333")
    reply = await orchestrator.ask(LogoutSession(), "carol")
    assert reply.ok, reply
    assert (await orchestrator.status("carol"))["phoneNumber"] is None
    # WAHA starts a logged-out running session again, unlinked: it wants a new scan.
    reply = await orchestrator.ask(GetQr(), "carol")
    assert reply.ok and reply.data["status"] == "SCAN_QR_CODE" and reply.data["qr"]["value"], reply
    await orchestrator.report_from_waha("carol", only_last=True)
    await orchestrator.wait_status("carol", "SCAN_QR_CODE")


async def test_restart_is_idempotent_and_keeps_one_session(orchestrator):
    await orchestrator.link("dora", phone="15550004444")
    for _ in range(2):
        reply = await orchestrator.ask(RestartSession(), "dora")
        assert reply.ok and reply.data["status"] in ("STARTING", "WORKING"), reply
    await wait_until(lambda: orchestrator.waha_last_status("dora", "WORKING"), 10, what="WORKING after the restarts")
    assert len(await _creates(orchestrator, "wf_dora")) == 1


async def test_every_transition_is_recorded_with_its_time_and_announced(orchestrator):
    tap = await orchestrator.tap(one_user_binding("erin"))
    await orchestrator.link("erin", phone="15550005555")
    assert (await orchestrator.ask(StopSession(), "erin")).ok
    await wait_until(lambda: orchestrator.waha_last_status("erin", "STOPPED"), 10, what="WAHA's STOPPED webhook")
    await orchestrator.report_from_waha("erin")
    await orchestrator.wait_status("erin", "STOPPED")

    expected = ["STARTING", "SCAN_QR_CODE", "WORKING", "STOPPED"]
    record = await orchestrator.record("erin")
    assert [h["status"] for h in record["statusHistory"]] == expected
    assert all(h["at"] and h["source"] == "waha" for h in record["statusHistory"])
    assert record["desired"] == "stopped"

    async def announced() -> bool:
        return [e["data"]["status"] for e in tap.of_type("session.status_changed")] == expected

    await wait_until(announced, 10, what="one session.status_changed per transition")
    changed = tap.of_type("session.status_changed")
    assert [e["data"]["previousStatus"] for e in changed] == ["STOPPED", *expected[:-1]]
