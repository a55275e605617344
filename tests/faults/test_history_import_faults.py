"""Issue 18: the history import under WAHA's rate limits and across an orchestrator `kill -9`."""

import asyncio

import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth
from ..helpers import (
    import_finished,
    metric,
    mongo,
    pair_by_code,
    stored_messages,
    unique_user,
    waha_api,
    waha_history,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]


async def expected_ids(stack, user: str) -> set[str]:
    async with waha_api(stack) as wa:
        return {m["id"] for messages in (await waha_history(wa, user)).values() for m in messages}


async def stored_ids(stack, user: str) -> list[str]:
    client = mongo(stack)
    try:
        return [doc["id"] for doc in await stored_messages(client, user)]
    finally:
        await client.close()


async def test_an_import_rate_limited_by_waha_waits_it_out_and_imports_everything(healthy, gateway, waha):
    user = unique_user("h429")
    session = session_name_for(user)
    history = {"generate": {"chats": 15, "messagesPerChat": 6, "seed": user}}
    # The session's next 5 history reads answer 429 with Retry-After (NestJS's throttler).
    r = await waha.post("/_emulator/faults", json={
        "status": 429, "times": 5, "retryAfter": 1, "paths": [f"/api/{session}/chats", f"/api/{session}/lids"],
    })
    assert r.status_code in (200, 201), r.text
    await pair_by_code(gateway, waha, user, "4915100000429", history)
    result = await import_finished(gateway, user, timeout=90)
    await waha.post("/_emulator/faults", json={})

    assert result["state"] == "done", result
    calls = (await waha.get("/_emulator/calls", params={"session": session})).json()
    assert any(c.get("status") == 429 for c in calls), "WAHA did rate-limit the import"
    ids = await stored_ids(healthy, user)
    assert len(ids) == len(set(ids))
    assert set(ids) == await expected_ids(healthy, user)
    assert result["messages"] == len(ids)


async def test_an_import_interrupted_by_kill_9_is_resumed_with_no_duplicates(healthy, gateway, waha):
    user = unique_user("hkill")
    session = session_name_for(user)
    history = {"generate": {"chats": 40, "messagesPerChat": 8, "seed": user}}
    # Slow reads, so the kill lands mid-import.
    r = await waha.post("/_emulator/faults", json={"latencyMs": 150, "paths": [f"/api/{session}/chats"]})
    assert r.status_code in (200, 201), r.text
    await pair_by_code(gateway, waha, user, "4915100000999", history)

    async def some_chats_done() -> bool:
        r = await gateway.get("/api/v1/waha/status", headers=auth(user))
        state = r.json()["historyImport"]
        return state["state"] == "running" and state["chats"] >= 5

    await wait_until(some_chats_done, timeout=30, interval=0.1, what="the import under way")
    healthy.kill("session-orchestrator")  # SIGKILL: the import's task dies with the process
    at_kill = len(await stored_ids(healthy, user))
    await asyncio.to_thread(healthy.start_again, "session-orchestrator")
    result = await import_finished(gateway, user, timeout=90)
    await waha.post("/_emulator/faults", json={})

    assert result["state"] == "done", result
    expected = await expected_ids(healthy, user)
    assert 0 < at_kill < len(expected), "the kill must land while the import runs"
    ids = await stored_ids(healthy, user)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert result["chats"] == 40
    async with httpx.AsyncClient(base_url=healthy.url("session-orchestrator")) as orchestrator:
        assert await metric(orchestrator, "orchestrator_history_imports_total", event="resumed") == 1
