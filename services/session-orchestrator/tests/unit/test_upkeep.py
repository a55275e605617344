"""Upkeep against the fakes: the jobs that find users to repair or stop, and the commands that do it."""

from datetime import timedelta

from fleet_shared.contracts.admin import IdleStopSession, ReconcileSession
from fleet_shared.contracts.commands import StartSession
from session_orchestrator.handlers.upkeep import LOST_SESSION_ERROR


def statuses(harness, user: str) -> list[str]:
    return [e.data.status for e in harness.events.of_type("session.status_changed", user)]


async def test_an_idle_session_is_stopped_and_never_logged_out(make_harness):
    harness = make_harness(session_idle_timeout=timedelta(hours=1))
    await harness.link("alice", "15550001111")
    harness.clock.advance(hours=2)

    reply = await harness.command(IdleStopSession(), "alice")

    assert reply.ok and reply.data == {"stopped": True}
    assert harness.waha.sessions["wf_alice"].status == "STOPPED"
    assert harness.waha.sessions["wf_alice"].phone == "15550001111"  # still linked
    record = harness.registry.docs["alice"]
    assert (record["desired"], record["idleStoppedAt"]) == ("stopped", harness.clock())
    assert (await harness.command(IdleStopSession(), "alice")).data == {"stopped": False, "reason": "already stopped"}


async def test_a_session_used_since_the_sweep_looked_is_left_running(make_harness):
    harness = make_harness(session_idle_timeout=timedelta(hours=1))
    await harness.link("alice", "15550001111")
    harness.clock.advance(minutes=30)

    assert (await harness.command(IdleStopSession(), "alice")).data == {"stopped": False, "reason": "active"}
    assert harness.waha.sessions["wf_alice"].status == "WORKING"


async def test_the_sweep_sends_an_idle_stop_through_the_partition_of_each_idle_user(make_harness):
    harness = make_harness(session_idle_timeout=timedelta(hours=1))
    await harness.link("alice", "15550001111")
    await harness.link("bob", "15550002222", at_ms=2_000)
    harness.clock.advance(minutes=90)
    await harness.registry.touch("bob", harness.clock())  # bob did something

    assert await harness.orchestrator.jobs.sweep_once() == ["alice"]
    [sent] = harness.upkeep.published
    assert (sent.type, sent.user_id, sent.session) == (IdleStopSession.TYPE, "alice", "wf_alice")


async def test_start_up_reconciliation_asks_about_every_user_whose_records_disagree(harness):
    await harness.link("alice", "15550001111")  # agrees
    await harness.link("bob", "15550002222", at_ms=2_000)
    del harness.waha.sessions["wf_bob"]  # WAHA lost bob's session
    await harness.waha.create_session("wf_carol", {"metadata": {"fleet.userId": "carol"}})  # not in the registry
    await harness.waha.create_session("wf_mallory", {"metadata": {"fleet.userId": "alice"}})  # no user's

    assert await harness.orchestrator.jobs.reconcile_once() == ["bob", "carol"]
    assert [(e.type, e.user_id) for e in harness.upkeep.published] == [
        (ReconcileSession.TYPE, "bob"), (ReconcileSession.TYPE, "carol")
    ]


async def test_a_session_running_in_waha_without_a_record_is_adopted(harness):
    await harness.waha.create_session("wf_carol", {"metadata": {"fleet.userId": "carol"}})
    harness.waha.scan("wf_carol", "15550003333")

    reply = await harness.command(ReconcileSession(), "carol")

    assert reply.data == {"repair": "adopt"}
    record = harness.registry.docs["carol"]
    assert (record["status"], record["phoneNumber"], record["lastActivity"]) == ("WORKING", "15550003333", harness.clock())
    assert statuses(harness, "carol") == ["WORKING"]


async def test_a_working_session_waha_lost_is_created_again_and_needs_a_new_qr(harness):
    await harness.link("bob", "15550002222")
    del harness.waha.sessions["wf_bob"]

    reply = await harness.command(ReconcileSession(), "bob")

    assert reply.data == {"repair": "start"}
    assert harness.waha.calls_of("session.create") == ["wf_bob", "wf_bob"]
    record = harness.registry.docs["bob"]
    assert (record["phoneNumber"], record["lastError"]) == (None, LOST_SESSION_ERROR)


async def test_a_working_session_waha_stopped_by_itself_is_started_again(harness):
    await harness.link("bob", "15550002222")
    harness.waha.sessions["wf_bob"].status = "STOPPED"

    reply = await harness.command(ReconcileSession(), "bob")

    assert reply.data == {"repair": "start"}
    assert harness.waha.calls_of("session.start") == ["wf_bob"]
    assert harness.registry.docs["bob"]["phoneNumber"] == "15550002222"


async def test_a_session_the_user_stopped_is_not_started_again(harness):
    await harness.link("bob", "15550002222")
    await harness.registry.set_desired("bob", "stopped", harness.clock())
    harness.waha.sessions["wf_bob"].status = "STOPPED"

    reply = await harness.command(ReconcileSession(), "bob")

    assert reply.data == {"repair": "observe"}
    assert harness.waha.calls_of("session.start") == []
    assert harness.registry.docs["bob"]["status"] == "STOPPED"


async def test_a_session_by_the_users_name_that_is_not_theirs_is_left_alone(harness):
    await harness.command(StartSession(), "dave")
    harness.waha.sessions["wf_dave"].config["metadata"] = {"fleet.userId": "eve"}

    reply = await harness.command(ReconcileSession(), "dave")

    assert reply.data == {"repair": "nothing"}
