"""Bringing a user's WAHA session up and waiting for its QR: the multi-call WAHA conversations
(what each step needs is decided in `domain/bring_up.py`)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fleet_shared.contracts.commands import QrView

from ..adapters.ports import Waha, WahaNotFound, WahaRejected
from ..domain.bring_up import StartAction, qr_step, start_action
from ..domain.statuses import WORKING, SessionStatus, normalize_status

log = logging.getLogger(__name__)

Admit = Callable[[], Awaitable[None]]


async def ensure_running(
    waha: Waha, name: str, config: dict, *, deadline: float | None = None, admit: Admit | None = None
) -> SessionStatus:
    """Create the session if WAHA does not know it, start it if stopped, restart it if FAILED.

    Safe to repeat: an existing session is never created twice (a 422 "already exists" from a
    concurrent creator is taken as success), and a running one is left alone. `admit` is awaited
    before anything would start running (it raises to refuse: the session limit).
    """
    try:
        info = await waha.get_session(name, deadline=deadline)
    except WahaNotFound:
        if admit is not None:
            await admit()
        try:
            info = await waha.create_session(name, config, deadline=deadline)
            log.info("created WAHA session %s", name)
            return normalize_status(info["status"])
        except WahaRejected as exc:
            if not exc.already_exists:
                raise
            info = await waha.get_session(name, deadline=deadline)
    action = start_action(normalize_status(info["status"]))
    if action is StartAction.NONE:
        return normalize_status(info["status"])
    if admit is not None:
        await admit()
    log.info("%s WAHA session %s (was %s)", action.value, name, info["status"])
    info = await waha.session_action(name, action.value, deadline=deadline)
    return normalize_status(info["status"])


async def fetch_qr(waha: Waha, name: str, *, deadline: float | None = None) -> dict:
    """The current QR as value + PNG; the image is fetched between two reads of the value so that
    a rotation in between is noticed and the pair fetched again."""
    for _ in range(3):
        value = await waha.qr_value(name, deadline=deadline)
        mimetype, data = await waha.qr_image(name, deadline=deadline)
        if await waha.qr_value(name, deadline=deadline) == value:
            return {"value": value, "mimetype": mimetype, "data": data}
    return {"value": value, "mimetype": mimetype, "data": data}


async def wait_for_qr(
    waha: Waha, name: str, status: SessionStatus, *, deadline: float, poll_interval: float
) -> QrView:
    """Answer the QR once the session shows one, or WORKING; at the deadline, whatever it is then."""
    loop = asyncio.get_running_loop()
    revived = False
    while True:
        step = qr_step(status, revived)
        if step == "working":
            return QrView(status=WORKING, qr=None)
        if step == "qr":
            try:
                return QrView(status=status, qr=await fetch_qr(waha, name, deadline=deadline))
            except WahaRejected as exc:
                # The status moved on between looking and fetching (scanned, rotated out, failed).
                log.info("QR of %s not available now: %s", name, exc.message)
        elif step == "revive":
            revived = True
            action = start_action(status)
            if action is not StartAction.NONE:
                info = await waha.session_action(name, action.value, deadline=deadline)
                status = normalize_status(info["status"])
                continue
        elif step == "give_up":
            return QrView(status=status, qr=None)
        if loop.time() + poll_interval >= deadline:
            return QrView(status=status, qr=None)
        await asyncio.sleep(poll_interval)
        status = normalize_status((await waha.get_session(name, deadline=deadline))["status"])
