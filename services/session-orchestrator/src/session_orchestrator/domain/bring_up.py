"""What bringing a session up needs, step by step, given the status WAHA gives it (pure)."""

from enum import StrEnum
from typing import Literal

from .statuses import FAILED, SCAN_QR_CODE, STARTING, STOPPED, WORKING, SessionStatus


class StartAction(StrEnum):
    """What bringing a session up needs, given WAHA's status of it."""

    NONE = "none"  # already running (starting, waiting for a scan, or working)
    START = "start"  # stopped: start keeps the link
    RESTART = "restart"  # FAILED is terminal until restarted


def start_action(status: SessionStatus) -> StartAction:
    if status == STOPPED:
        return StartAction.START
    if status == FAILED:
        return StartAction.RESTART
    return StartAction.NONE


QrOutcome = Literal["qr", "working", "wait", "revive", "give_up"]


def qr_step(status: SessionStatus, revived: bool) -> QrOutcome:
    """One step of waiting for a QR: fetch it, report WORKING, wait, or bring the session back once."""
    if status == WORKING:
        return "working"
    if status == SCAN_QR_CODE:
        return "qr"
    if status == STARTING:
        return "wait"
    # STOPPED or FAILED while we wait (stopped from outside, QRs exhausted): revive once, then stop trying.
    return "give_up" if revived else "revive"
