"""Issue 3, point 6: at most MAX_SESSIONS running sessions (429 `session_limit_reached` past it);
WAHA 429/5xx/timeouts are retried, then the session is FAILED with lastError, and nobody else waits."""

import asyncio
import time
from datetime import timedelta

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts.commands import GetQr, RestartSession, StartSession, StopSession
from fleet_shared.routing import one_user_binding

pytestmark = pytest.mark.integration


def assert_limit(reply) -> None:
    assert not reply.ok, reply
    assert (reply.error.code, reply.error.status) == ("session_limit_reached", 429)


async def test_past_max_sessions_a_new_session_gets_429(topology, waha, make_orchestrator):
    orchestrator = await make_orchestrator(topology, waha, max_sessions=2)
    for user in ("u1", "u2"):
        assert (await orchestrator.ask(GetQr(), user)).ok

    for command in (GetQr(), StartSession(), RestartSession()):
        assert_limit(await orchestrator.ask(command, "u3"))
    assert [c["session"] for c in await waha.calls(method="POST", path="/api/sessions")] == ["wf_u1", "wf_u2"]
    # A session that runs already is never refused.
    assert (await orchestrator.ask(GetQr(), "u1")).ok
    assert (await orchestrator.ask(RestartSession(), "u1")).ok

    # u2 stops; once WAHA's report says so, its slot is free.
    assert (await orchestrator.ask(StopSession(), "u2")).ok
    await wait_until(lambda: orchestrator.waha_last_status("u2", "STOPPED"), 10, what="u2 STOPPED in WAHA")
    await orchestrator.report_from_waha("u2", only_last=True)
    await orchestrator.wait_status("u2", "STOPPED")
    assert (await orchestrator.ask(GetQr(), "u3")).ok
    # ... and now u2 is the one past the limit.
    assert_limit(await orchestrator.ask(StartSession(), "u2"))
    assert (await orchestrator.runtime.registry.get("u2"))["lastError"] is None  # refusing is not a session error


async def test_concurrent_newcomers_never_overshoot_the_limit(topology, waha, make_orchestrator):
    orchestrator = await make_orchestrator(topology, waha, max_sessions=3)
    assert (await orchestrator.ask(StartSession(), "old")).ok
    newcomers = [f"new{i}" for i in range(6)]
    replies = await asyncio.gather(*(orchestrator.ask(StartSession(), user) for user in newcomers))
    admitted = [user for user, reply in zip(newcomers, replies, strict=True) if reply.ok]
    refused = [reply for reply in replies if not reply.ok]
    assert len(admitted) == 2, replies
    for reply in refused:
        assert_limit(reply)
    created = {c["session"] for c in await waha.calls(method="POST", path="/api/sessions")}
    assert created == {"wf_old", *(f"wf_{u}" for u in admitted)}


async def test_waha_failing_for_one_user_makes_that_session_failed_and_delays_nobody(
    topology, make_waha, make_orchestrator
):
    waha = await make_waha(failing_sessions={"wf_carol"})
    orchestrator = await make_orchestrator(topology, waha, waha_backoff_base=timedelta(milliseconds=300))
    tap = await orchestrator.tap(one_user_binding("carol"))

    carol = asyncio.create_task(orchestrator.ask(GetQr(), "carol"))
    await wait_until(lambda: _arrived(waha, "wf_carol"), 10, what="carol's first WAHA call")
    started = time.monotonic()
    bob = await orchestrator.ask(GetQr(), "bob")
    assert bob.ok and bob.data["status"] == "SCAN_QR_CODE", bob
    assert time.monotonic() - started < 2 and not carol.done()  # bob did not wait for carol's retries

    reply = await carol
    assert (reply.error.code, reply.error.status) == ("waha_unavailable", 503)
    assert waha.slow.arrived["wf_carol"] == orchestrator.settings.waha_attempts  # retried, bounded
    view = await orchestrator.status("carol")
    assert view["status"] == "FAILED" and "503" in view["lastError"]
    failed = await tap.wait_for("session.status_changed", lambda e: e["data"]["status"] == "FAILED")
    assert "503" in failed["data"]["lastError"]

    # WAHA is back: the next QR request brings carol up and her status is WAHA's again.
    waha.slow.failing.clear()
    reply = await orchestrator.ask(GetQr(), "carol")
    assert reply.ok and reply.data["status"] == "SCAN_QR_CODE", reply
    view = await orchestrator.status("carol")
    assert view["status"] != "FAILED" and view["lastError"] is None


async def _arrived(waha, name: str) -> bool:
    return waha.slow.arrived.get(name, 0) > 0
