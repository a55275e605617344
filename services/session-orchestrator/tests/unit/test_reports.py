"""WAHA's status reports and users' activity against the fakes: only WAHA's newest word counts, each
change is announced once (again on a redelivery), a transient failure asks for a redelivery."""

from datetime import timedelta

import pytest
from pymongo.errors import AutoReconnect

from fleet_shared.contracts import deterministic_id
from fleet_shared.contracts.events import SessionActive
from session_orchestrator.handlers.errors import Retry


def changes(harness, user: str) -> list[tuple[str | None, str]]:
    return [(e.data.previous_status, e.data.status) for e in harness.events.of_type("session.status_changed", user)]


async def test_each_change_is_recorded_then_announced_with_an_id_of_its_own(harness):
    await harness.report("alice", "STARTING", 1_000)
    await harness.report("alice", "WORKING", 2_000, phone="15550001111")

    assert changes(harness, "alice") == [("STOPPED", "STARTING"), ("STARTING", "WORKING")]
    working = harness.events.of_type("session.status_changed", "alice")[-1]
    assert working.id == deterministic_id("alice", "status", "WORKING", "2000")
    assert working.data.phone_number == "15550001111"
    record = harness.registry.docs["alice"]
    assert (record["status"], record["phoneNumber"], record["lastReportedAtMs"]) == ("WORKING", "15550001111", 2_000)


async def test_an_older_report_arriving_late_changes_nothing(harness):
    await harness.report("alice", "WORKING", 2_000)
    await harness.report("alice", "SCAN_QR_CODE", 1_000)  # WAHA's retry of an earlier webhook

    assert harness.registry.docs["alice"]["status"] == "WORKING"
    assert changes(harness, "alice") == [("STOPPED", "WORKING")]


async def test_a_redelivered_report_announces_its_change_again_with_the_same_id(harness):
    await harness.report("alice", "WORKING", 2_000)
    await harness.report("alice", "WORKING", 2_000, redelivered=True)  # the ack was lost

    first, again = harness.events.of_type("session.status_changed", "alice")
    assert first.id == again.id


async def test_a_duplicate_webhook_that_is_not_a_redelivery_announces_nothing(harness):
    await harness.report("alice", "WORKING", 2_000)
    await harness.report("alice", "WORKING", 2_000)

    assert len(harness.events.of_type("session.status_changed", "alice")) == 1


async def test_a_report_whose_announcement_failed_is_retried_and_announced_on_redelivery(harness):
    harness.events.down = True
    with pytest.raises(Retry):
        await harness.report("alice", "WORKING", 2_000)
    assert harness.registry.docs["alice"]["status"] == "WORKING"  # recorded before the announcement

    harness.events.down = False
    await harness.report("alice", "WORKING", 2_000, redelivered=True)

    assert changes(harness, "alice") == [("STOPPED", "WORKING")]


async def test_a_registry_outage_asks_for_a_redelivery(harness):
    harness.registry.fail_with = AutoReconnect("connection refused")
    with pytest.raises(Retry):
        await harness.report("alice", "WORKING", 2_000)
    assert harness.events.published == []


async def test_each_new_qr_is_published_for_the_live_console(harness):
    await harness.waha.create_session("wf_alice", {})
    await harness.waha.get_session("wf_alice")  # SCAN_QR_CODE now
    await harness.report("alice", "SCAN_QR_CODE", 1_000)
    harness.waha.sessions["wf_alice"].qr = 2  # rotated
    await harness.report("alice", "SCAN_QR_CODE", 21_000)

    assert [e.data.value for e in harness.events.of_type("session.qr_updated", "alice")] == [
        "2@qr-wf_alice-1", "2@qr-wf_alice-2"
    ]


async def test_a_qr_that_cannot_be_fetched_is_left_out_not_retried(harness):
    await harness.report("alice", "SCAN_QR_CODE", 1_000)  # WAHA has no such session here: no QR to read

    assert changes(harness, "alice") == [("STOPPED", "SCAN_QR_CODE")]
    assert harness.events.of_type("session.qr_updated") == []


async def test_a_status_waha_has_no_name_for_here_is_ignored(harness):
    await harness.report("alice", "SOMETHING_NEW", 1_000)

    assert "alice" not in harness.registry.docs and harness.events.published == []


async def test_a_lost_report_is_still_applied(harness, caplog):
    await harness.report("alice", "WORKING", 1_000)
    await harness.report("alice", "SCAN_QR_CODE", 2_000)  # WORKING -> SCAN_QR_CODE skips STARTING

    assert harness.registry.docs["alice"]["status"] == "SCAN_QR_CODE"
    assert "a report was probably lost" in caplog.text


async def test_reports_of_two_users_touch_only_their_own_records(harness):
    await harness.report("alice", "WORKING", 1_000, phone="15550001111")
    await harness.report("bob", "SCAN_QR_CODE", 1_500)

    assert (harness.registry.docs["alice"]["status"], harness.registry.docs["bob"]["status"]) == ("WORKING", "SCAN_QR_CODE")
    assert harness.registry.docs["bob"]["phoneNumber"] is None
    assert {e.user_id for e in harness.events.of_type("session.status_changed")} == {"alice", "bob"}


async def test_activity_moves_the_idle_clock_forward_only(harness):
    await harness.registry.touch("alice", harness.clock())
    start = harness.clock()
    harness.clock.advance(minutes=10)

    later = harness.envelope(SessionActive(message_id="m2"), "alice")
    older = harness.envelope(SessionActive(message_id="m1"), "alice").model_copy(
        update={"occurred_at": start + timedelta(minutes=1)}
    )
    future = harness.envelope(SessionActive(message_id="m3"), "alice").model_copy(
        update={"occurred_at": start + timedelta(days=1)}
    )
    await harness.orchestrator.reports.active(later)
    await harness.orchestrator.reports.active(older)
    assert harness.registry.docs["alice"]["lastActivity"] == start + timedelta(minutes=10)
    await harness.orchestrator.reports.active(future)  # a phone's clock ahead: counts as now
    assert harness.registry.docs["alice"]["lastActivity"] == harness.clock()


async def test_activity_during_a_registry_outage_asks_for_a_redelivery(harness):
    harness.registry.fail_with = AutoReconnect("connection refused")
    with pytest.raises(Retry):
        await harness.orchestrator.reports.active(harness.envelope(SessionActive(message_id="m1"), "alice"))
