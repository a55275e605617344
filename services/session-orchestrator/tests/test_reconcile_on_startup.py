"""Issue 3, point 4: at start-up the orchestrator reconciles its registry with WAHA's session list.

Each scenario runs an orchestrator, shuts it down (as SIGTERM does), changes WAHA behind its back,
and starts another one on the same broker, database and WAHA.
"""

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts.commands import StopSession
from fleet_shared.waha import USER_ID_METADATA
from session_orchestrator.domain.session_config import WebhookTarget, session_config
from session_orchestrator.handlers.upkeep import LOST_SESSION_ERROR

pytestmark = pytest.mark.integration


async def _waha_status(waha, name: str) -> str | None:
    r = await waha.http.get(f"/api/sessions/{name}")
    return r.json()["status"] if r.status_code == 200 else None


async def _waha_reaches(waha, name: str, status: str) -> None:
    async def reached() -> bool:
        return await _waha_status(waha, name) == status

    await wait_until(reached, 10, what=f"WAHA's {name} {status}")


async def _registry_reaches(registry, user_id: str, status: str) -> dict:
    async def reached() -> dict | None:
        doc = await registry.get(user_id)
        return doc if doc and doc["status"] == status else None

    return await wait_until(reached, 10, what=f"{user_id}'s registry status {status}")


async def test_a_working_session_waha_stopped_is_started_again_without_a_qr(topology, waha, make_orchestrator, registry):
    first = await make_orchestrator(topology, waha)
    await first.link("alice", phone="15550001111")
    await first.stop()
    # WAHA restarted without restarting its sessions: alice's is STOPPED, still linked; nobody reported it.
    assert (await waha.http.post("/api/sessions/wf_alice/stop")).status_code == 201

    second = await make_orchestrator(topology, waha)
    await _waha_reaches(waha, "wf_alice", "WORKING")  # nobody scanned
    starts = await waha.calls(method="POST", path="/api/sessions/wf_alice/start")
    assert len(starts) == 1
    assert len(await waha.calls(method="POST", path="/api/sessions")) == 1  # never created again
    await second.report_from_waha("alice", only_last=True)
    view = await second.wait_status("alice", "WORKING")
    assert view["phoneNumber"] == "15550001111"
    history = (await second.record("alice"))["statusHistory"]
    assert {"status": "STARTING", "source": "orchestrator"}.items() <= history[-2].items()


async def test_sessions_waha_still_runs_are_adopted(topology, waha, make_orchestrator, registry, webhook_sink):
    # Made by an earlier run whose registry is gone, and two sessions that are not ours.
    config = session_config("gus", WebhookTarget(webhook_sink.url, "k" * 32))
    assert (await waha.http.post("/api/sessions", json={"name": "wf_gus", "start": True, "config": config})).status_code == 201
    await _waha_reaches(waha, "wf_gus", "SCAN_QR_CODE")
    await waha.scan("wf_gus", "15550007777")
    forged = session_config("eve", WebhookTarget(webhook_sink.url, "k" * 32))
    for name, cfg in (("wf_mallory", forged), ("default", {})):
        assert (await waha.http.post("/api/sessions", json={"name": name, "start": True, "config": cfg})).status_code == 201

    orchestrator = await make_orchestrator(topology, waha)
    doc = await _registry_reaches(registry, "gus", "WORKING")
    assert doc["phoneNumber"] == "15550007777"
    assert doc["lastActivity"] is not None  # its idle clock starts at adoption
    assert doc["statusHistory"][-1]["source"] == "orchestrator"
    assert (await orchestrator.status("gus"))["status"] == "WORKING"
    # Adopting is looking, not acting: the only POSTs about these sessions are the test's own creates.
    posts = [c for c in await waha.calls(method="POST") if c["session"] in ("wf_gus", "wf_mallory", "default")]
    assert [c["path"] for c in posts] == ["/api/sessions"] * 3
    # The foreign sessions are left alone and unrecorded.
    assert await registry.get("eve") is None and await registry.get("mallory") is None


async def test_a_session_waha_lost_altogether_is_created_again(topology, waha, make_orchestrator, registry):
    first = await make_orchestrator(topology, waha)
    await first.link("hank", phone="15550008888")
    await first.stop()
    assert (await waha.http.delete("/api/sessions/wf_hank")).status_code == 200  # WAHA lost it, link and all

    await make_orchestrator(topology, waha)
    await _waha_reaches(waha, "wf_hank", "SCAN_QR_CODE")  # created again: a new QR to scan
    assert len(await waha.calls(method="POST", path="/api/sessions")) == 2
    doc = await _registry_reaches(registry, "hank", "STARTING")
    assert doc["lastError"] == LOST_SESSION_ERROR and doc["phoneNumber"] is None


async def test_a_session_its_user_stopped_is_not_started_again(topology, waha, make_orchestrator, registry):
    first = await make_orchestrator(topology, waha)
    await first.link("ida", phone="15550009999")
    assert (await first.ask(StopSession(), "ida")).ok
    await first.stop()  # WAHA's STOPPED webhook never reached the registry: it still says WORKING
    assert (await registry.get("ida"))["status"] == "WORKING"

    await make_orchestrator(topology, waha)
    await _registry_reaches(registry, "ida", "STOPPED")  # WAHA's word taken, the user's wish kept
    assert await _waha_status(waha, "wf_ida") == "STOPPED"
    assert await waha.calls(method="POST", path="/api/sessions/wf_ida/start") == []


def older_config(user: str, url: str) -> dict:
    """What an older release gave a session: fewer events, no NOWEB store."""
    return {"metadata": {USER_ID_METADATA: user}, "webhooks": [{"url": url, "events": ["message", "session.status"]}]}


async def test_sessions_with_an_older_config_get_the_current_one_one_at_a_time_keeping_their_pairing(
    topology, waha, make_orchestrator, webhook_sink
):
    first = await make_orchestrator(topology, waha)
    for user, phone in (("olga", "15550002221"), ("oskar", "15550002222")):
        await first.link(user, phone=phone)
    await first.stop()
    # WAHA restarts a running session it is given a config, still linked.
    for user in ("olga", "oskar"):
        older = older_config(user, webhook_sink.url)
        assert (await waha.http.put(f"/api/sessions/wf_{user}", json={"config": older})).status_code == 200
        await _waha_reaches(waha, f"wf_{user}", "WORKING")
    qr_before = {u: _qr_count(await waha.status_events(f"wf_{u}")) for u in ("olga", "oskar")}

    await make_orchestrator(topology, waha, config_rollout_interval="500ms")

    async def rolled_out() -> list[dict] | None:
        puts = [c for c in await waha.calls(method="PUT") if c["path"] in ("/api/sessions/wf_olga", "/api/sessions/wf_oskar")]
        return puts if len(puts) == 4 else None  # the two above, then the orchestrator's two

    puts = (await wait_until(rolled_out, 15, what="both sessions reconfigured"))[2:]
    assert abs(puts[1]["timestamp"] - puts[0]["timestamp"]) >= 400  # staggered, not all at once
    for user in ("olga", "oskar"):
        await _waha_reaches(waha, f"wf_{user}", "WORKING")
        info = await waha.session(f"wf_{user}")
        assert info["config"]["noweb"]["store"]["enabled"] is True
        assert "message.reaction" in info["config"]["webhooks"][0]["events"]
        assert info["me"]["id"].startswith("1555000222")  # the same phone: no new pairing
        assert _qr_count(await waha.status_events(f"wf_{user}")) == qr_before[user]


def _qr_count(events: list[dict]) -> int:
    return sum(1 for e in events if e["payload"]["status"] == "SCAN_QR_CODE")
