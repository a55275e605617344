"""7. History import: 200 chats x 50 messages WhatsApp synced, from `POST /history/import` until
every message is stored, beside the raw reads and writes it needs.

The system: the whole stack as processes; one new user per run, connected (QR, scanned, WORKING:
the import of their still empty history runs and ends), then the emulator is given their synced
history (`POST /_emulator/sessions/{session}/history`, generated: 200 chats of 50 messages, groups,
@lid people). Timed from the user's `POST /api/v1/waha/history/import` until `historyImport.state`
is `done` and MongoDB holds all of the user's messages (read every 100 ms). In between: the
orchestrator reads `/lids`, `/groups`, the chats overview (HISTORY_CHATS_PAGE a page) and each
chat's newest 50 messages (HISTORY_CONCURRENCY chats at a time), publishes each message (confirmed)
as `message.imported`, records each chat in its cursor; the persister writes them in batches.
The baseline, in the same run right after, in a process of its own: the same WAHA reads (overview
pages, each chat's messages, as many chats at once) with httpx, each chat's messages written with
one `insert_many` into a scratch collection of the same MongoDB: the least any import must do.
Before both, once untimed, the same reads: the emulator makes a generated chat's messages when it
is first read, and neither side should pay that.
"""

import asyncio
import time

import httpx
from pymongo import AsyncMongoClient

from fleet_shared.ids import session_name_for
from session_orchestrator.config import Settings as OrchestratorSettings

from . import payloads
from .common import SECRETS, Context, Row, fresh_prefix, run_loadgen, scratch_database, token, whole_system
from .gateway import connect_users

CHATS = 200
PER_CHAT = 50
POLL = 0.1
DEADLINE = 300.0
DEFAULTS = OrchestratorSettings.model_fields
PAGE = DEFAULTS["history_chats_page"].default
AT_ONCE = DEFAULTS["history_concurrency"].default


async def _finished(gw: httpx.AsyncClient, auth: dict) -> dict | None:
    r = await gw.get("/api/v1/waha/status", headers=auth)
    state = r.json()["historyImport"] if r.status_code == 200 else None
    return state if state and state["state"] in ("done", "failed") else None


async def drive(spec: dict) -> dict:
    """The system: the import asked for, then status and MongoDB read until it is done and stored."""
    auth = {"Authorization": f"Bearer {spec['token']}"}
    client = AsyncMongoClient(spec["mongodb_url"])
    messages = client[spec["database"]]["messages"]
    async with httpx.AsyncClient(base_url=spec["gateway"], timeout=30) as gw:
        start = time.perf_counter()
        r = await gw.post("/api/v1/waha/history/import", headers=auth)
        if r.status_code != 202:
            raise RuntimeError(f"the gateway answered {r.status_code}: {r.text[:300]}")
        state: dict | None = None
        stored = 0
        imported = None  # when the orchestrator had published it all (historyImport done)
        while time.perf_counter() - start < DEADLINE:
            state = state or await _finished(gw, auth)
            if state is not None:
                imported = imported or time.perf_counter() - start
                stored = await messages.count_documents({"userId": spec["user"]})
                if state["state"] == "failed" or stored >= state["messages"]:
                    break
            await asyncio.sleep(POLL)
        seconds = time.perf_counter() - start
    await client.close()
    return {"seconds": seconds, "state": state, "stored": stored, "imported": imported}


async def raw_import(spec: dict) -> dict:
    """Baseline: the same WAHA reads with httpx, each chat's messages bulk-inserted."""
    client = AsyncMongoClient(spec["mongodb_url"], w="majority")
    collection = client[spec["database"]]["messages"]
    session = spec["session"]
    gate = asyncio.Semaphore(spec["at_once"])
    written = 0
    async with httpx.AsyncClient(base_url=spec["waha"], headers={"X-Api-Key": spec["api_key"]}, timeout=30) as wa:

        async def chat(chat_id: str) -> None:
            nonlocal written
            async with gate:
                r = await wa.get(f"/api/{session}/chats/{chat_id}/messages",
                                 params={"limit": spec["per_chat"], "downloadMedia": "false", "merge": "false"})
                r.raise_for_status()
                docs = [{"userId": spec["user"], **m} for m in r.json()]
                if docs:
                    await collection.insert_many(docs, ordered=False)
                written += len(docs)

        start = time.perf_counter()
        offset = 0
        while True:
            r = await wa.get(f"/api/{session}/chats/overview",
                             params={"limit": spec["page"], "offset": offset, "merge": "false"})
            r.raise_for_status()
            page = r.json()
            await asyncio.gather(*(chat(c["id"]) for c in page))
            offset += len(page)
            if len(page) < spec["page"]:
                break
        seconds = time.perf_counter() - start
    await client.close()
    return {"seconds": seconds, "messages": written}


async def _prepare(gateway: str, waha: str, user: str, i: int, chats: int) -> None:
    """The user connected, their first (empty) import done, then their synced history in WAHA."""
    await connect_users(gateway, waha, [user])
    auth = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as gw, httpx.AsyncClient(base_url=waha, timeout=60) as wa:
        for _ in range(300):
            if await _finished(gw, auth):
                break
            await asyncio.sleep(0.1)
        r = await wa.post(f"/_emulator/sessions/{session_name_for(user)}/history",
                          json={"generate": {"chats": chats, "messagesPerChat": PER_CHAT, "seed": f"bench{i}"}})
        r.raise_for_status()


def run(ctx: Context) -> list[Row]:
    chats = ctx.n(CHATS, 40)
    times, rates, base_times, base_rates, notes = [], [], [], [], []
    with whole_system(ctx, "history") as system:
        gateway, waha = system.url("gateway"), system.waha_url
        for i in range(ctx.runs):
            user = payloads.users(f"hist{i}", 1)[0]
            asyncio.run(_prepare(gateway, waha, user, i, chats))
            raw_spec = {
                "waha": waha, "api_key": SECRETS["WAHA_API_KEY"], "session": session_name_for(user),
                "user": user, "per_chat": PER_CHAT, "page": PAGE, "at_once": AT_ONCE, "mongodb_url": system.env["MONGODB_URL"],
            }
            # Untimed: the emulator makes a generated chat's messages when first read; both sides read them made.
            with scratch_database(system.env["MONGODB_URL"], fresh_prefix("histwarm")) as warm_db:
                run_loadgen("bench.history:raw_import", {**raw_spec, "database": warm_db})
            ctx.say(f"  history run {i + 1}/{ctx.runs}: {chats} chats x {PER_CHAT} messages")
            s = run_loadgen("bench.history:drive", {
                "gateway": gateway, "token": token(user), "user": user,
                "mongodb_url": system.env["MONGODB_URL"], "database": system.config.env["MONGODB_DATABASE"],
            })
            state = s["state"] or {}
            done = state.get("state") == "done" and s["stored"] >= state.get("messages", 0) > 0
            count = state.get("messages", 0)
            times.append(s["seconds"] if done else None)
            rates.append(count / s["seconds"] if done else None)
            if not done:
                notes.append(f"run {i + 1}: {state} after {s['seconds']:.0f} s, {s['stored']} stored (no figure)")
            with scratch_database(system.env["MONGODB_URL"], fresh_prefix("histraw")) as raw_db:
                b = run_loadgen("bench.history:raw_import", {**raw_spec, "database": raw_db})
            base_times.append(b["seconds"])
            base_rates.append(b["messages"] / b["seconds"])
            ctx.say(f"    {count} messages published in {s['imported'] or 0:.2f} s, stored in {s['seconds']:.2f} s "
                    f"({rates[-1] or 0:.0f}/s); raw {b['messages']} in {b['seconds']:.2f} s ({base_rates[-1]:.0f}/s)")
    raw = f"httpx reads of the same WAHA ({AT_ONCE} chats at once) + insert_many per chat"
    what = f"history import, {chats} chats × {PER_CHAT} messages"
    return [
        Row("7. History", f"{what}: messages/s", "/s", rates, base_rates, raw, note="; ".join(notes)),
        Row("7. History", f"{what}: time", "s", times, base_times, raw, higher_is_better=False),
    ]
