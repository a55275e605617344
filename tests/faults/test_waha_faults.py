"""3d: WAHA answering 429, 500 or slowly for one user: retried with backoff, then a clear failure with
its reason, while another user's calls go through as usual.

Black-box: only the gateway's API and the emulator (WAHA's API, and its fault injection limited to
one session) are used.
"""

import asyncio
import time

import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..helpers import auth, connect, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

FAST = 2.0  # seconds: what "unaffected" means for the other user's calls on this machine
CHAT = "4915400000001@c.us"


async def timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def fault(waha: httpx.AsyncClient, user: str, **faults) -> None:
    r = await waha.post("/_emulator/faults", json={**faults, "sessions": [session_name_for(user)]})
    assert r.status_code == 201, r.text


async def faulted_calls(waha: httpx.AsyncClient, user: str, status: int) -> list[dict]:
    calls = (await waha.get("/_emulator/calls", params={"session": session_name_for(user)})).json()
    return [c for c in calls if c["fault"] and c["status"] == status]


async def in_flight(waha: httpx.AsyncClient, user: str) -> bool:
    calls = (await waha.get("/_emulator/calls", params={"session": session_name_for(user)})).json()
    return any(c["status"] is None for c in calls)


async def spared_user_is_fine(gateway: httpx.AsyncClient, user: str, text: str) -> None:
    (sent, took_send), (status, took_status) = await asyncio.gather(
        timed(gateway.post("/api/v1/waha/messages", headers=auth(user), json={"chatId": CHAT, "text": text})),
        timed(gateway.get("/api/v1/waha/status", headers=auth(user))),
    )
    assert sent.status_code == 201, sent.text
    assert status.status_code == 200 and status.json()["status"] == "WORKING"
    assert took_send < FAST and took_status < FAST, (took_send, took_status)


@pytest.fixture
async def users(gateway, waha):
    hit, spared = unique_user("hit"), unique_user("spared")
    await asyncio.gather(connect(gateway, waha, hit, "15550400004"), connect(gateway, waha, spared, "15550400005"))
    return hit, spared


async def test_429_is_retried_with_backoff_then_refused_with_the_reason(users, gateway, waha):
    hit, spared = users
    await fault(waha, hit, status=429)  # WAHA's throttler, with Retry-After: 1
    refused = asyncio.create_task(timed(gateway.post("/api/v1/waha/messages", headers=auth(hit), json={"chatId": CHAT, "text": "throttled"})))
    await spared_user_is_fine(gateway, spared, "while the other one is throttled")
    response, took = await refused

    assert response.status_code == 503 and response.json()["error"]["code"] == "waha_unavailable", response.text
    attempts = await faulted_calls(waha, hit, 429)
    assert len(attempts) >= 3, attempts
    gaps = [(b["timestamp"] - a["timestamp"]) / 1000 for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # Retry-After: 1 honoured between attempts
    status = (await gateway.get("/api/v1/waha/status", headers=auth(hit))).json()
    assert "429" in (status["lastError"] or ""), status
    sent = (await waha.get(f"/_emulator/sessions/{session_name_for(hit)}/sent")).json()
    assert not any(m["text"] == "throttled" for m in sent)


async def test_500_while_starting_a_session_makes_it_failed_with_the_reason(users, gateway, waha):
    _, spared = users
    broken = unique_user("broken")
    await fault(waha, broken, status=500)
    refused = asyncio.create_task(timed(gateway.get("/api/v1/waha/qr", headers=auth(broken))))
    await spared_user_is_fine(gateway, spared, "while another user's WAHA session fails")
    response, _ = await refused

    assert response.status_code == 503 and response.json()["error"]["code"] == "waha_unavailable", response.text
    assert len(await faulted_calls(waha, broken, 500)) >= 3  # retried (reading a session is safe to repeat)
    status = (await gateway.get("/api/v1/waha/status", headers=auth(broken))).json()
    assert status["status"] == "FAILED", status
    assert "500" in (status["lastError"] or ""), status


async def test_a_slow_waha_for_one_user_delays_only_that_user(users, gateway, waha):
    hit, spared = users
    await fault(waha, hit, latencyMs=2000)
    slow = asyncio.create_task(timed(gateway.post("/api/v1/waha/messages", headers=auth(hit), json={"chatId": CHAT, "text": "slowly"})))
    await wait_until(lambda: in_flight(waha, hit), timeout=10, what="the slow user's call held by WAHA")
    await spared_user_is_fine(gateway, spared, "while the other one waits for a slow WAHA")
    response, took = await slow

    assert response.status_code == 201, response.text
    assert took >= 2.0
    sent = (await waha.get(f"/_emulator/sessions/{session_name_for(hit)}/sent")).json()
    assert [m["text"] for m in sent if m["text"] == "slowly"] == ["slowly"]
