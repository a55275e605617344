"""Issue 3, point 5: a session without activity (commands or messages) for SESSION_IDLE_TIMEOUT is
stopped, not logged out; admin reads are not activity; the next request starts it without a QR."""

import asyncio
from datetime import timedelta

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import envelope
from fleet_shared.contracts.admin import AdminCountSessions, AdminListSessions, IdleStopSession
from fleet_shared.contracts.commands import GetQr
from fleet_shared.contracts.events import SessionActive

pytestmark = pytest.mark.integration

IDLE = timedelta(seconds=2)
SWEEP = timedelta(milliseconds=200)
CHAT = "15550000000@c.us"


def activity_report(user_id: str, n: int) -> object:
    """What webhook-ingest publishes for the user's messages (at most once per ACTIVITY_REPORT_INTERVAL)."""
    return envelope(SessionActive(message_id=f"false_{CHAT}_M{n}"), user_id)


async def _waha_status(waha, name: str) -> str:
    return (await waha.session(name))["status"]


async def test_an_idle_session_is_stopped_while_a_chatting_one_is_not(topology, waha, make_orchestrator):
    orchestrator = await make_orchestrator(topology, waha, session_idle_timeout=IDLE, idle_sweep_interval=SWEEP)
    await orchestrator.link("alice", phone="15550001111")
    await orchestrator.link("bob", phone="15550002222")

    # bob gets and sends messages (webhook-ingest reports them as `session.active`); meanwhile an
    # operator keeps reading alice's record and the fleet lists: none of that is alice's activity.
    chatting = asyncio.Event()
    chatting.set()

    async def chat_and_read() -> None:
        n = 0
        while chatting.is_set():
            n += 1
            await orchestrator.publish(orchestrator.topology.events, activity_report("bob", n))
            await orchestrator.record("alice")
            assert (await orchestrator.ask_admin(AdminListSessions())).ok
            assert (await orchestrator.ask_admin(AdminCountSessions())).ok
            await asyncio.sleep(0.3)  # pace of the conversation

    task = asyncio.create_task(chat_and_read())
    try:
        await wait_until(lambda: orchestrator.waha_last_status("alice", "STOPPED"), 15, what="alice stopped as idle")
    finally:
        chatting.clear()
        await task
    assert await _waha_status(waha, "wf_bob") == "WORKING"

    record = await orchestrator.record("alice")
    assert record["desired"] == "stopped" and record["idleStoppedAt"]
    assert record["phoneNumber"] == "15550001111"
    # Stopped, not logged out: WAHA never got a logout, and the next request starts it without a QR.
    assert await orchestrator.waha.calls(method="POST", path="/api/sessions/wf_alice/logout") == []
    await orchestrator.report_from_waha("alice", only_last=True)
    await orchestrator.wait_status("alice", "STOPPED")
    reply = await orchestrator.ask(GetQr(), "alice")
    assert reply.ok and reply.data == {"status": "WORKING", "qr": None}, reply
    assert (await orchestrator.runtime.registry.get("alice"))["desired"] == "running"


async def test_an_idle_stop_that_comes_after_new_activity_does_nothing(topology, waha, make_orchestrator):
    orchestrator = await make_orchestrator(topology, waha, session_idle_timeout=timedelta(hours=1))
    await orchestrator.link("carol", phone="15550003333")
    # Another replica's sweep saw carol idle a moment ago; she has been active since.
    await orchestrator.publish(orchestrator.topology.orchestrator_partition, envelope(IdleStopSession(), "carol"))
    # A command sent after it lands on the same partition: once it is answered, the idle stop was applied.
    assert (await orchestrator.ask(GetQr(), "carol")).ok
    assert await orchestrator.waha.calls(method="POST", path="/api/sessions/wf_carol/stop") == []
    assert await _waha_status(waha, "wf_carol") == "WORKING"
    assert (await orchestrator.record("carol"))["desired"] == "running"
    assert await orchestrator.dead_letters() == 0
