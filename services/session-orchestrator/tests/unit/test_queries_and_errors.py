"""Reads of the registry, and the one mapping from a failure to the reply the requester gets."""

import pytest
from pymongo.errors import AutoReconnect

from fleet_shared.contracts.admin import AdminCountSessions, AdminGetSession, AdminListSessions
from fleet_shared.contracts.commands import GetQr, GetSession, LogoutSession, RestartSession, StartSession, StopSession
from session_orchestrator.adapters.ports import WahaBadResponse, WahaNotFound, WahaRejected, WahaUnavailable


async def test_a_user_never_seen_is_stopped_and_reading_is_not_activity(harness):
    reply = await harness.query(GetSession(), "nobody")

    assert reply.ok and (reply.data["status"], reply.data["session"]) == ("STOPPED", "wf_nobody")
    assert "nobody" not in harness.registry.docs


async def test_the_users_own_status(harness):
    await harness.link("alice", "15550001111")

    view = (await harness.query(GetSession(), "alice")).data

    assert (view["userId"], view["status"], view["phoneNumber"], view["lastError"]) == ("alice", "WORKING", "15550001111", None)


async def test_operators_read_one_record_a_list_and_the_counts(make_harness):
    harness = make_harness(max_sessions=5)
    await harness.link("alice", "15550001111")
    await harness.command(GetQr(), "bob")
    await harness.report("bob", "SCAN_QR_CODE", 3_000)
    await harness.command(StopSession(), "carol")

    record = (await harness.query(AdminGetSession(), "alice")).data
    assert [h["status"] for h in record["statusHistory"]] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    assert (await harness.query(AdminGetSession(), "zed")).error.status == 404
    running = (await harness.query(AdminListSessions(), "ops")).data
    assert [i["userId"] for i in running] == ["alice", "bob"]
    everyone = (await harness.query(AdminListSessions(all=True), "ops")).data
    assert [i["userId"] for i in everyone] == ["alice", "bob", "carol"]
    count = (await harness.query(AdminCountSessions(), "ops")).data
    assert (count["count"], count["running"], count["maxSessions"]) == (3, 2, 5)
    assert count["byStatus"]["STOPPED"] == 1


async def test_a_registry_outage_is_503_for_queries_and_commands(harness):
    harness.registry.fail_with = AutoReconnect("connection refused")

    for reply in (await harness.query(GetSession(), "alice"), await harness.command(StartSession(), "alice")):
        assert (reply.error.code, reply.error.status) == ("database_unavailable", 503)


async def test_an_unknown_type_is_refused(harness):
    reply = await harness.orchestrator.dispatcher.query(harness.envelope(StartSession(), "alice"))

    assert (reply.error.code, reply.error.status) == ("unsupported", 400)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (WahaUnavailable("WAHA answered 502", 502), "waha_unavailable", 503),
        (WahaNotFound("WAHA session.restart: not found", 404), "session_not_found", 404),
        (WahaRejected("WAHA answered 401: Unauthorized", 401), "waha_auth_failed", 502),
        (WahaRejected("WAHA answered 400: bad name", 400), "waha_rejected", 422),
        (WahaBadResponse("WAHA's answer to session restart is not a session", None, "<html>"), "waha_bad_response", 502),
        (RuntimeError("a bug"), "internal_error", 500),
    ],
)
async def test_every_failure_becomes_a_reply_and_waha_errors_are_remembered(harness, error, code, status):
    await harness.command(StartSession(), "alice")
    harness.waha.fail("session.restart", error)

    reply = await harness.command(RestartSession(), "alice")

    assert (reply.ok, reply.error.code, reply.error.status) == (False, code, status)
    remembered = harness.registry.docs["alice"]["lastError"]
    if isinstance(error, (WahaUnavailable, WahaRejected, WahaBadResponse)):
        assert remembered == error.message
    else:
        assert remembered is None


@pytest.mark.parametrize("command", [StartSession(), GetQr(), RestartSession()])
async def test_waha_unreachable_while_bringing_a_session_up_makes_it_failed(harness, unavailable, command):
    await harness.command(StartSession(), "alice")
    harness.waha.fail("session.get", unavailable())

    reply = await harness.command(command, "alice")

    assert reply.error.code == "waha_unavailable"
    record = harness.registry.docs["alice"]
    assert (record["status"], record["lastChange"]["source"]) == ("FAILED", "orchestrator")
    assert [e.data.status for e in harness.events.of_type("session.status_changed", "alice")] == ["FAILED"]


async def test_waha_unreachable_on_a_logout_leaves_the_status_alone(harness, unavailable):
    await harness.link("alice", "15550001111")
    harness.waha.fail("session.logout", unavailable())

    assert (await harness.command(LogoutSession(), "alice")).error.code == "waha_unavailable"
    assert harness.registry.docs["alice"]["status"] == "WORKING"
