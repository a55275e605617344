"""The session state machine and the rules for applying WAHA's status reports."""

import pytest

from session_orchestrator.domain.bring_up import StartAction, qr_step, start_action
from session_orchestrator.domain.statuses import (
    FAILED,
    FAILED_ERROR,
    SCAN_QR_CODE,
    SOURCE_ORCHESTRATOR,
    SOURCE_WAHA,
    STARTING,
    STATUSES,
    STOPPED,
    WORKING,
    SessionState,
    StatusReport,
    UnknownStatus,
    decide_observation,
    decide_report,
    is_allowed,
    normalize_status,
)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (STOPPED, STARTING),
        (STARTING, SCAN_QR_CODE),
        (STARTING, WORKING),
        (STARTING, FAILED),
        (SCAN_QR_CODE, SCAN_QR_CODE),
        (SCAN_QR_CODE, WORKING),
        (SCAN_QR_CODE, FAILED),
        (WORKING, STARTING),
        (WORKING, FAILED),
        (WORKING, STOPPED),
        (FAILED, STARTING),
        (FAILED, STOPPED),
    ],
)
def test_lifecycle_steps_are_allowed(current, new):
    assert is_allowed(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (STOPPED, FAILED),
        (WORKING, SCAN_QR_CODE),
        (FAILED, WORKING),
        (WORKING, WORKING),
    ],
)
def test_shortcuts_are_not(current, new):
    assert not is_allowed(current, new)


def test_every_status_has_transitions():
    for status in STATUSES:
        assert is_allowed(status, STOPPED) or status == STOPPED


def test_normalize_status():
    assert normalize_status("WORKING") == WORKING
    assert normalize_status(" scan_qr_code ") == SCAN_QR_CODE
    assert normalize_status("PASSKEY_REQUIRED") == SCAN_QR_CODE
    with pytest.raises(UnknownStatus):
        normalize_status("DANCING")
    with pytest.raises(UnknownStatus):
        normalize_status(None)


def test_start_action():
    assert start_action(STOPPED) is StartAction.START
    assert start_action(FAILED) is StartAction.RESTART
    for running in (STARTING, SCAN_QR_CODE, WORKING):
        assert start_action(running) is StartAction.NONE


def test_qr_step():
    assert qr_step(WORKING, False) == "working"
    assert qr_step(SCAN_QR_CODE, False) == "qr"
    assert qr_step(STARTING, True) == "wait"
    assert qr_step(FAILED, False) == "revive"
    assert qr_step(FAILED, True) == "give_up"
    assert qr_step(STOPPED, False) == "revive"


def test_first_report_applies_and_changes():
    decision = decide_report(SessionState(), StatusReport(STARTING, 1000))
    assert decision.apply
    assert decision.state.status == STARTING
    assert decision.state.last_reported_at_ms == 1000
    assert decision.change is not None
    assert (decision.change.previous_status, decision.change.status) == (STOPPED, STARTING)
    assert not decision.unexpected


def test_out_of_order_reports_are_ignored():
    state = SessionState()
    for status, at in [(STARTING, 1000), (SCAN_QR_CODE, 2000), (WORKING, 3000)]:
        state = decide_report(state, StatusReport(status, at, phone_number="15550001111")).state
    assert state.status == WORKING

    # SCAN_QR_CODE of t=2000 delivered again late, and an even older STARTING: both ignored.
    for late in (StatusReport(SCAN_QR_CODE, 2000), StatusReport(STARTING, 1000), StatusReport(STOPPED, 2999)):
        decision = decide_report(state, late)
        assert not decision.apply
        assert decision.change is None
        assert decision.state == state


def test_same_report_again_replays_its_change():
    state = decide_report(SessionState(status=SCAN_QR_CODE, last_reported_at_ms=10), StatusReport(WORKING, 20, "1555")).state
    again = decide_report(state, StatusReport(WORKING, 20, "1555"))
    assert not again.apply
    assert again.replay
    assert again.change == state.last_change
    assert again.change.reported_at_ms == 20


def test_repeated_status_is_applied_but_is_no_change():
    state = SessionState(status=SCAN_QR_CODE, last_reported_at_ms=10)
    decision = decide_report(state, StatusReport(SCAN_QR_CODE, 30))  # the QR rotated
    assert decision.apply
    assert decision.change is None
    assert decision.state.last_reported_at_ms == 30
    # and its redelivery has nothing to replay
    assert not decide_report(decision.state, StatusReport(SCAN_QR_CODE, 30)).replay


def test_phone_number_is_kept_from_working():
    state = decide_report(SessionState(status=SCAN_QR_CODE), StatusReport(WORKING, 5, "15550001111")).state
    assert state.phone_number == "15550001111"
    state = decide_report(state, StatusReport(STARTING, 6, None)).state
    assert state.phone_number == "15550001111"
    # a report from a state that is not WORKING does not set it
    assert decide_report(SessionState(), StatusReport(STARTING, 1, "999")).state.phone_number is None


def test_failed_sets_an_error_and_working_clears_it():
    failed = decide_report(SessionState(status=SCAN_QR_CODE), StatusReport(FAILED, 5)).state
    assert failed.last_error == FAILED_ERROR
    assert decide_report(failed, StatusReport(STARTING, 6)).state.last_error == FAILED_ERROR
    assert decide_report(failed, StatusReport(WORKING, 7)).state.last_error is None


@pytest.mark.parametrize("then", [SCAN_QR_CODE, WORKING])
def test_a_logout_or_restart_whose_two_reports_arrive_swapped_is_not_a_lost_report(then):
    # What the emulator's logout produced on every logout once its webhook connections had idled:
    # STOPPED and STARTING of one millisecond, delivered at once, STARTING first.
    state = SessionState(status=WORKING, phone_number="15550001111", last_reported_at_ms=1_000)
    for report in (StatusReport(STARTING, 2_000), StatusReport(STOPPED, 2_000), StatusReport(then, 2_300)):
        decision = decide_report(state, report)
        assert decision.apply and not decision.unexpected, report
        state = decision.state
    assert state.status == then


def test_a_lost_report_is_noticed_but_applied():
    decision = decide_report(SessionState(status=WORKING), StatusReport(SCAN_QR_CODE, 5))  # STARTING lost
    assert decision.apply
    assert decision.unexpected
    assert decision.state.status == SCAN_QR_CODE


def test_another_status_in_the_same_millisecond_is_applied():
    state = decide_report(SessionState(), StatusReport(STARTING, 500)).state
    decision = decide_report(state, StatusReport(SCAN_QR_CODE, 500))
    assert decision.apply and decision.change.previous_status == STARTING


# ---- the orchestrator's own observations -----------------------------------------------------


def test_an_observation_changes_the_status_but_not_the_report_clock():
    state = decide_report(SessionState(), StatusReport(WORKING, 1000, "1555")).state
    decision = decide_observation(state, FAILED, 5000, error="WAHA answered 503")
    assert decision.apply
    assert decision.state.status == FAILED
    assert decision.state.last_error == "WAHA answered 503"
    assert decision.state.last_reported_at_ms == 1000  # WAHA's next word still counts
    change = decision.change
    assert (change.previous_status, change.status, change.source) == (WORKING, FAILED, SOURCE_ORCHESTRATOR)
    assert change.reported_at_ms == 5000
    # WAHA's next webhook, even one stamped before our observation, wins.
    after = decide_report(decision.state, StatusReport(WORKING, 1001, "1555"))
    assert after.apply and after.state.status == WORKING and after.state.last_error is None
    assert after.change.source == SOURCE_WAHA


def test_observing_the_status_already_recorded_is_nothing():
    state = SessionState(status=WORKING, last_reported_at_ms=7)
    assert not decide_observation(state, WORKING, 9).apply


def test_an_observed_working_session_takes_its_phone():
    decision = decide_observation(SessionState(), WORKING, 9, phone_number="15550001111")
    assert decision.state.phone_number == "15550001111" and decision.state.last_error is None
    assert decision.change.previous_status == STOPPED


def test_an_observed_failure_without_a_reason_gets_one():
    assert decide_observation(SessionState(status=WORKING), FAILED, 9).state.last_error == FAILED_ERROR
