"""Reconciliation decisions (pure): what to repair when the registry and WAHA disagree."""

from datetime import UTC, datetime, timedelta

import pytest

from session_orchestrator.domain.reconciliation import (
    Repair,
    is_idle,
    observed_status,
    owner_of,
    phone_of,
    reconcile_plan,
    repair_for,
)
from session_orchestrator.domain.statuses import (
    DESIRED_RUNNING,
    DESIRED_STOPPED,
    FAILED,
    SCAN_QR_CODE,
    STARTING,
    STOPPED,
    WORKING,
)


def info(name: str, status: str, user: str | None = None, phone: str | None = None) -> dict:
    metadata = {"fleet.userId": user} if user else {}
    return {
        "name": name,
        "status": status,
        "config": {"metadata": metadata},
        "me": {"id": f"{phone}@c.us", "pushName": "x"} if phone else None,
    }


@pytest.mark.parametrize(
    ("recorded", "desired", "waha", "repair"),
    [
        # WAHA runs it: adopt it, or take WAHA's status
        (None, None, WORKING, Repair.ADOPT),
        (None, None, SCAN_QR_CODE, Repair.ADOPT),
        (STOPPED, None, WORKING, Repair.OBSERVE),
        (SCAN_QR_CODE, DESIRED_RUNNING, WORKING, Repair.OBSERVE),
        (WORKING, DESIRED_RUNNING, WORKING, Repair.NOTHING),
        (STARTING, None, STARTING, Repair.NOTHING),
        # WAHA lost a WORKING session (stopped, or gone altogether): start it again
        (WORKING, DESIRED_RUNNING, STOPPED, Repair.START),
        (WORKING, None, None, Repair.START),
        # ... unless it was stopped on purpose and the STOPPED report got lost
        (WORKING, DESIRED_STOPPED, STOPPED, Repair.OBSERVE),
        # pairing cut short, or a FAILED session WAHA forgot: record STOPPED
        (SCAN_QR_CODE, DESIRED_RUNNING, STOPPED, Repair.OBSERVE),
        (STARTING, DESIRED_RUNNING, None, Repair.OBSERVE),
        (FAILED, None, None, Repair.OBSERVE),
        # nothing on either side
        (None, None, None, Repair.NOTHING),
        (STOPPED, DESIRED_STOPPED, STOPPED, Repair.NOTHING),
        (None, None, STOPPED, Repair.NOTHING),
        # FAILED in WAHA
        (WORKING, DESIRED_RUNNING, FAILED, Repair.OBSERVE),
        (FAILED, None, FAILED, Repair.NOTHING),
        (None, None, FAILED, Repair.NOTHING),
    ],
)
def test_repair_for(recorded, desired, waha, repair):
    assert repair_for(recorded, desired, waha) is repair


def test_observed_status_of_a_lost_session_is_stopped():
    assert observed_status(None) == STOPPED
    assert observed_status(WORKING) == WORKING


def test_a_session_is_ours_only_when_its_metadata_names_the_user_of_its_name():
    assert owner_of(info("wf_alice", WORKING, "alice")) == "alice"
    assert owner_of(info("wf_alice", WORKING, "bob")) is None  # forged: bob's id on alice's name
    assert owner_of(info("default", WORKING)) is None  # a session someone made by hand
    assert owner_of(info("wf_a.b", WORKING, "a.b")) is None  # not a valid user id
    assert owner_of({"name": "wf_alice", "config": None}) is None
    assert owner_of("nonsense") is None


def test_phone_of():
    assert phone_of(info("wf_alice", WORKING, "alice", phone="15550001111")) == "15550001111"
    assert phone_of(info("wf_alice", STOPPED, "alice")) is None
    assert phone_of(None) is None


def test_the_plan_names_only_users_whose_two_records_disagree():
    waha = [
        info("wf_alice", WORKING, "alice"),  # registry agrees
        info("wf_bob", STOPPED, "bob"),  # WAHA stopped bob's WORKING session: start again
        info("wf_carol", SCAN_QR_CODE, "carol"),  # registry knows nothing: adopt
        info("wf_dave", STOPPED, "dave"),  # both stopped
        info("stranger", WORKING),  # not ours
        info("wf_eve", WORKING, "mallory"),  # not ours either
    ]
    registry = {
        "alice": (WORKING, DESIRED_RUNNING),
        "bob": (WORKING, DESIRED_RUNNING),
        "frank": (WORKING, None),  # WAHA lost frank altogether
        "gina": (FAILED, None),  # WAHA forgot a FAILED session
    }
    assert reconcile_plan(waha, registry) == ["bob", "carol", "frank", "gina"]


def test_idle():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    day = timedelta(hours=24)
    assert is_idle(now - day, now, day)
    assert not is_idle(now - day + timedelta(seconds=1), now, day)
    assert not is_idle(None, now, day)
