"""5. Sessions: N users starting sessions until all show their QR; orchestrator memory per idle session.

Start-up. The system: the whole stack as processes (emulator timings of the e2e tests: a session
shows its QR 0.1 s after it starts). A load-generator process has N users call
`POST /api/v1/waha/session/start` (100 at a time) and then reads the admin count
(`GET /api/v1/admin/sessions/count`) every 100 ms until N sessions are SCAN_QR_CODE in the
orchestrator's registry, which it learns from WAHA's `session.status` webhooks through ingest.
The baseline: the same load generator creating and starting N sessions straight on the same
emulator (`POST /api/sessions {"name", "start": true}`, 100 at a time), polling `GET /api/sessions`
until all are SCAN_QR_CODE. Fresh stack per run.

Memory. The orchestrator's resident set (VmRSS) after start-up and a warm-up of queries, then
after 10,000 sessions were registered (registry documents as the orchestrator writes them, STOPPED
and idle) and each of those users asked for their status once, the admin list and count were read,
and an idle sweep ran. (after − before) / 10,000 is the cost of one registered idle session.
"""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from pymongo import AsyncMongoClient

from fleet_shared.broker import RpcClient
from fleet_shared.contracts import envelope, new_id
from fleet_shared.contracts.commands import GetSession
from fleet_shared.ids import session_name_for
from fleet_shared.topology import Topology

from . import payloads
from .common import PARTITIONS, Context, Row, rss_bytes, run_loadgen, token, whole_system
from .http1 import Connection, build_request, json_request

CONCURRENCY = 100


async def _bounded(calls, concurrency: int) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(call):
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def _until(check, timeout: float, interval: float = 0.1) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if await check():
            return time.perf_counter()
        await asyncio.sleep(interval)
    raise TimeoutError("not all sessions showed their QR in time")


async def start_all(spec: dict) -> dict:
    """The system: N users start their sessions through the gateway; wait until all are SCAN_QR_CODE."""
    port = spec["port"]
    pool = [Connection(port) for _ in range(CONCURRENCY)]
    requests = [build_request("POST", "/api/v1/waha/session/start", port, {"Authorization": f"Bearer {t}"})
                for t in spec["tokens"]]
    count = build_request("GET", "/api/v1/admin/sessions/count", port, {"Authorization": f"Bearer {spec['admin']}"})
    statuses: dict[int, int] = {}
    started = time.perf_counter()

    def call(raw: bytes):
        async def go():
            conn = pool.pop()
            try:
                status, _ = await conn.request(raw)
                statuses[status] = statuses.get(status, 0) + 1
            finally:
                pool.append(conn)
        return go

    await _bounded([call(r) for r in requests], CONCURRENCY)
    answered = time.perf_counter()
    watcher = Connection(port)

    async def all_qr() -> bool:
        status, body = await watcher.request(count)
        return status == 200 and json.loads(body)["byStatus"].get("SCAN_QR_CODE", 0) >= len(requests)

    done = await _until(all_qr, spec["timeout"])
    return {"seconds": done - started, "answered_seconds": answered - started, "statuses": statuses}


async def raw_start_all(spec: dict) -> dict:
    """Baseline: N sessions created and started straight on WAHA (the emulator)."""
    port = spec["port"]
    pool = [Connection(port) for _ in range(CONCURRENCY)]
    headers = {"X-Api-Key": spec["api_key"]}
    names = [f"raw_{spec['tag']}_{i:05d}" for i in range(spec["count"])]
    requests = [json_request("POST", "/api/sessions", port, {"name": n, "start": True}, headers) for n in names]
    listing = build_request("GET", "/api/sessions?all=true", port, headers)
    started = time.perf_counter()

    def call(raw: bytes):
        async def go():
            conn = pool.pop()
            try:
                await conn.request(raw)
            finally:
                pool.append(conn)
        return go

    await _bounded([call(r) for r in requests], CONCURRENCY)
    answered = time.perf_counter()
    watcher = Connection(port)
    wanted = set(names)

    async def all_qr() -> bool:
        status, body = await watcher.request(listing)
        ready = {s["name"] for s in json.loads(body) if s["status"] == "SCAN_QR_CODE"} if status == 200 else set()
        return wanted <= ready

    done = await _until(all_qr, spec["timeout"])
    return {"seconds": done - started, "answered_seconds": answered - started}


# --- memory ---------------------------------------------------------------------------------


def _registry_doc(user: str, now: datetime) -> dict:
    """A registered, idle, STOPPED session as `registry.py` writes it."""
    old = now - timedelta(days=2)
    return {
        "userId": user, "session": session_name_for(user), "status": "STOPPED", "statusHistory": [],
        "lastReportedAtMs": None, "phoneNumber": None, "lastError": None, "desired": "stopped",
        "lastActivity": old, "createdAt": old, "updatedAt": old,
    }


async def _ask_status(url: str, topology: Topology, users: list[str]) -> None:
    client = RpcClient(url, topology, "bench-memory")
    await client.connect()
    try:
        def ask(user: str):
            env = envelope(GetSession(), user, session=session_name_for(user), correlation_id=new_id())
            return lambda: client.request(topology.queries, env, 60)

        await _bounded([ask(u) for u in users], CONCURRENCY)
    finally:
        await client.close()


async def _register(mongodb_url: str, database: str, users: list[str]) -> None:
    client = AsyncMongoClient(mongodb_url)
    try:
        now = datetime.now(UTC)
        sessions = client[database]["sessions"]
        for i in range(0, len(users), 1000):
            await sessions.insert_many([_registry_doc(u, now) for u in users[i : i + 1000]], ordered=False)
    finally:
        await client.close()


def _memory(ctx: Context, count: int) -> tuple[float, int, int]:
    with whole_system(ctx, "mem", env={"IDLE_SWEEP_INTERVAL": "2s"}) as system:
        pid = system.children["session-orchestrator"].process.pid
        topology = Topology(system.config.env["BROKER_PREFIX"], PARTITIONS)
        admin = {"Authorization": f"Bearer {token('bench-admin', admin=True)}"}
        import httpx

        def admin_reads() -> None:
            with httpx.Client(base_url=system.url("gateway"), headers=admin, timeout=60) as gw:
                gw.get("/api/v1/admin/sessions/count").raise_for_status()
                gw.get("/api/v1/admin/sessions", params={"all": "true", "limit": 1000}).raise_for_status()

        # Warm-up: the same kinds of calls on users that have no record, so code paths and pools exist.
        asyncio.run(_ask_status(ctx.rabbitmq_url, topology, payloads.users("warm", 500)))
        admin_reads()
        time.sleep(3)  # an idle sweep
        before = rss_bytes(pid)
        users = payloads.users("mem", count)
        asyncio.run(_register(system.env["MONGODB_URL"], system.env["MONGODB_DATABASE"], users))
        asyncio.run(_ask_status(ctx.rabbitmq_url, topology, users))
        admin_reads()
        time.sleep(3)  # another idle sweep, over the 10,000
        after = rss_bytes(pid)
    return (after - before) / count, before, after


def run(ctx: Context) -> list[Row]:
    count = ctx.n(1000, 200)
    registered = ctx.n(10_000, 2_000)
    sut, base, notes = [], [], []
    runs = min(ctx.runs, 2)  # a run of 1,000 users takes 1-2 minutes here; two keep `make bench` near 10
    for i in range(runs):
        ctx.say(f"  sessions run {i + 1}/{runs} ({count} users)")
        with whole_system(ctx, "ses", env={"MAX_SESSIONS": str(count * 5)}) as system:
            waha_port = system.config.ports["waha-emulator"]
            b = run_loadgen("bench.sessions:raw_start_all", {"port": waha_port, "api_key": system.config.env["WAHA_API_KEY"],
                                                            "count": count, "tag": f"r{i}", "timeout": 300})
            users = payloads.users(f"ses{i}_", count)
            s = run_loadgen("bench.sessions:start_all", {"port": system.config.ports["gateway"],
                                                        "tokens": [token(u) for u in users],
                                                        "admin": token("bench-admin", admin=True), "timeout": 300})
        sut.append(s["seconds"])
        base.append(b["seconds"])
        refused = {k: v for k, v in s["statuses"].items() if not 200 <= int(k) < 300}
        if refused:
            notes.append(f"run {i + 1}: start answered {refused}")
        ctx.say(f"    all SCAN_QR_CODE after {sut[-1]:.1f} s (start calls answered in {s['answered_seconds']:.1f} s); "
                f"raw WAHA {base[-1]:.1f} s")
    ctx.say(f"  memory: {registered} registered idle sessions")
    per_session, before, after = _memory(ctx, registered)
    ctx.say(f"    orchestrator RSS {before / 2**20:.1f} MiB → {after / 2**20:.1f} MiB: {per_session:.0f} bytes per session")
    return [
        Row("5. Sessions", f"{count} users start → all SCAN_QR_CODE", "s", sut, base,
            "the same sessions created + started on WAHA directly", "", higher_is_better=False, note="; ".join(notes)),
        Row("5. Sessions", f"orchestrator memory per registered idle session ({registered:,})", "B", [per_session],
            [], f"RSS {before / 2**20:.1f} → {after / 2**20:.1f} MiB", "≤ a few KB (≤ 4 KiB)",
            lambda v, r: v <= 4096, higher_is_better=False),
    ]
