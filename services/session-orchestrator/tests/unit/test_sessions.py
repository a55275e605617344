"""The session commands against the fakes: create/start/restart/stop/logout/QR, what WAHA is asked and
what the registry records."""

import asyncio

from fleet_shared.contracts.commands import GetQr, LogoutSession, RestartSession, StartSession, StopSession
from fleet_shared.waha import session_webhook_key
from session_orchestrator.adapters.ports import WahaNotFound

WEBHOOK_EVENTS = [
    "message", "message.any", "message.ack", "message.reaction", "message.edited", "message.revoked", "session.status",
    "group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants",
]


async def test_the_first_qr_creates_the_users_own_session_and_answers_its_qr(harness):
    reply = await harness.command(GetQr(), "alice")

    assert reply.ok, reply
    assert reply.data["status"] == "SCAN_QR_CODE"
    assert reply.data["qr"] == {"value": "2@qr-wf_alice-1", "mimetype": "image/png", "data": "iVBORw0KGgo="}
    config = harness.waha.sessions["wf_alice"].config
    assert config["metadata"] == {"fleet.userId": "alice"}
    [hook] = config["webhooks"]
    assert (hook["url"], hook["events"], hook["hmac"]) == (
        "http://ingest.test/webhooks/waha/wf_alice", WEBHOOK_EVENTS,
        {"key": session_webhook_key("unit-hmac-key-0123456789abcdef", "wf_alice")},
    )
    assert hook["hmac"]["key"] != session_webhook_key("unit-hmac-key-0123456789abcdef", "wf_bob")
    record = harness.registry.docs["alice"]
    assert (record["desired"], record["lastActivity"], record["session"]) == ("running", harness.clock(), "wf_alice")


async def test_asking_again_never_creates_a_second_session(harness):
    for _ in range(3):
        assert (await harness.command(StartSession(), "alice")).ok
    assert harness.waha.calls_of("session.create") == ["wf_alice"]


async def test_a_session_created_meanwhile_by_another_replica_is_taken_as_it_is(harness):
    await harness.waha.create_session("wf_alice", {"metadata": {"fleet.userId": "alice"}})
    harness.waha.fail("session.get", WahaNotFound("Session 'wf_alice' not found", 404))  # looked just before

    reply = await harness.command(StartSession(), "alice")

    assert reply.ok and reply.data["status"] == "SCAN_QR_CODE", reply  # WAHA's 422 "already exists" is success
    assert harness.waha.calls_of("session.create") == ["wf_alice", "wf_alice"]
    assert len(harness.waha.sessions) == 1


async def test_a_stopped_session_is_started_and_a_failed_one_restarted(harness):
    await harness.command(StartSession(), "alice")
    await harness.command(StartSession(), "bob")
    harness.waha.sessions["wf_alice"].status = "STOPPED"
    harness.waha.sessions["wf_bob"].status = "FAILED"

    assert (await harness.command(StartSession(), "alice")).ok
    assert (await harness.command(StartSession(), "bob")).ok

    assert harness.waha.calls_of("session.start") == ["wf_alice"]
    assert harness.waha.calls_of("session.restart") == ["wf_bob"]


async def test_stop_keeps_the_phone_linked_and_is_remembered_as_wanted(harness):
    await harness.link("alice", "15550001111")

    reply = await harness.command(StopSession(), "alice")

    assert reply.ok and reply.data == {"status": "STOPPED"}
    assert harness.waha.sessions["wf_alice"].phone == "15550001111"
    assert harness.registry.docs["alice"]["desired"] == "stopped"
    # The next start needs no QR: the linked phone brings it back WORKING.
    assert (await harness.command(GetQr(), "alice")).data == {"status": "WORKING", "qr": None}


async def test_stopping_or_logging_out_a_session_waha_never_had_answers_stopped(harness):
    assert (await harness.command(StopSession(), "nobody")).data == {"status": "STOPPED"}
    assert (await harness.command(LogoutSession(), "nobody")).data == {"status": "STOPPED"}
    assert harness.waha.calls_of("session.create") == []


async def test_logout_unlinks_the_phone(harness):
    await harness.link("alice", "15550001111")

    reply = await harness.command(LogoutSession(), "alice")

    assert reply.ok and reply.data == {"status": "STARTING"}
    assert harness.registry.docs["alice"]["phoneNumber"] is None
    assert (await harness.command(GetQr(), "alice")).data["status"] == "SCAN_QR_CODE"  # a new QR to scan


async def test_restart_of_a_session_never_created_creates_it(harness):
    reply = await harness.command(RestartSession(), "carol")

    assert reply.ok, reply
    assert harness.waha.calls_of("session.create") == ["wf_carol"]
    assert harness.waha.calls_of("session.restart") == []


async def test_the_qr_wait_ends_at_the_deadline_with_the_status_it_has(harness):
    await harness.command(StartSession(), "alice")
    harness.waha.sessions["wf_alice"].status = "STARTING"
    original = harness.waha.get_session

    async def stays_starting(name, *, deadline=None):
        info = await original(name, deadline=deadline)
        harness.waha.sessions[name].status = info["status"] = "STARTING"
        return info

    harness.waha.get_session = stays_starting
    started = asyncio.get_running_loop().time()
    reply = await harness.command(GetQr(), "alice", budget=0.2)

    assert reply.ok and reply.data == {"status": "STARTING", "qr": None}, reply
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_failed_status_the_orchestrator_inferred_is_corrected_by_what_waha_says(harness, unavailable):
    await harness.link("alice", "15550001111")
    harness.waha.fail("session.get", unavailable())  # WAHA still unreachable after the client's retries
    failed = await harness.command(StartSession(), "alice")
    assert failed.error.code == "waha_unavailable"
    assert harness.registry.docs["alice"]["status"] == "FAILED"  # observed: WAHA stayed unreachable

    reply = await harness.command(StartSession(), "alice")  # WAHA is back; the session kept WORKING

    assert reply.ok and reply.data == {"status": "WORKING"}, reply
    record = harness.registry.docs["alice"]
    assert (record["status"], record["lastError"]) == ("WORKING", None)
    changes = [e.data.status for e in harness.events.of_type("session.status_changed", "alice")]
    assert changes[-2:] == ["FAILED", "WORKING"]


async def test_two_users_sessions_are_separate(harness):
    await harness.link("alice", "15550001111")
    await harness.command(GetQr(), "bob")

    assert harness.waha.sessions["wf_alice"].config["metadata"] == {"fleet.userId": "alice"}
    assert harness.waha.sessions["wf_bob"].config["metadata"] == {"fleet.userId": "bob"}
    assert (harness.registry.docs["alice"]["status"], harness.registry.docs["bob"]["status"]) == ("WORKING", "STOPPED")
    assert (await harness.command(StopSession(), "bob")).ok
    assert harness.waha.sessions["wf_alice"].status == "WORKING"
