"""Pairing by phone number: POST /api/{session}/auth/request-code, and the phone entering the code."""

from __future__ import annotations

import secrets

from .errors import NotFound, ObjectError, TextError
from .state import Session, SessionManager, StateConflict, Status

# Baileys' requestPairingCode draws 8 characters from this alphabet; WAHA shows them as ABCD-EFGH.
CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


def new_code() -> str:
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


async def request_code(manager: SessionManager, name: str, phone: str, method: str | None,
                       timeout: float) -> dict[str, str]:
    """NOWEB's requestCode: no `method`; from STARTING it waits for the QR; only in SCAN_QR_CODE."""
    s = manager.require(name)
    if method:
        raise TextError(422, "NOWEB engine doesn't support any 'method', remove it and try again")
    if s.status == Status.STARTING:
        await manager.wait_until(lambda: s.status != Status.STARTING, timeout)
    if manager.get(name) is not s:
        raise NotFound()
    if s.status != Status.SCAN_QR_CODE:
        raise TextError(422, f"Can request code only in SCAN_QR_CODE status. The current status is {s.status}")
    code = new_code()
    s.pairing = (code, phone)
    return {"code": code}


def pair(manager: SessionManager, s: Session, code: str, push_name: str | None) -> Session:
    """The phone enters `code`: it must be the last one requested while the QR is shown."""
    if s.status != Status.SCAN_QR_CODE:
        raise StateConflict(s, [str(Status.SCAN_QR_CODE)])
    if s.pairing is None:
        raise ObjectError(422, {"error": "No pairing code was requested", "session": s.name})
    expected, phone = s.pairing
    if code.replace("-", "").upper() != expected.replace("-", ""):
        raise ObjectError(422, {"error": "Wrong pairing code", "session": s.name, "code": code})
    return manager.link(s, phone, push_name or s.name)
