"""4. Gateway: status and send round trips over the broker, 100 concurrent clients.

The system: the whole stack as processes; 100 users, each connected (QR, scanned, WORKING). A
load-generator process runs 100 clients, one per user, each with its own keep-alive connection,
back to back: `GET /api/v1/waha/status` (gateway → RabbitMQ → orchestrator → MongoDB → reply),
then `POST /api/v1/waha/messages` (gateway → RabbitMQ → orchestrator → WAHA sendText → reply;
the emulator's webhooks of the sent message and its acks then flow through ingest and persister
in the background, as they would).
The baseline: one FastAPI process on uvicorn answering the same two JSON bodies (taken from the
system's own answers) without the broker, and without checking the token (`bench/baseline_api.py`),
driven by the same load generator with the same 100 clients.
"""

import asyncio
import itertools
import json
import subprocess
import sys

import httpx

from fleet_devtools.localdev import free_port, wait_for_port
from fleet_shared.ids import session_name_for

from . import payloads
from .common import Context, Row, run_loadgen, token, whole_system
from .http1 import build_request, closed_loop

CLIENTS = 100
SEND_BODY = {"chatId": "4915112345678@c.us", "text": "benchmark message"}


def _requests(spec: dict, kind: str) -> list[bytes]:
    out = []
    for user_token in spec["tokens"]:
        headers = {"Authorization": f"Bearer {user_token}"}
        if kind == "status":
            out.append(build_request("GET", "/api/v1/waha/status", spec["port"], headers))
        else:
            body = json.dumps(SEND_BODY).encode()
            out.append(build_request("POST", "/api/v1/waha/messages", spec["port"],
                                     {**headers, "Content-Type": "application/json"}, body))
    return out


async def drive(spec: dict) -> dict:
    """`CLIENTS` clients back to back; requests go round the users, so each client is mostly one user."""
    requests = itertools.cycle(_requests(spec, spec["kind"]))
    return await closed_loop(spec["port"], requests, concurrency=spec["concurrency"], duration=spec["duration"],
                             warmup=spec["warmup"])


async def connect_users(gateway: str, waha: str, users: list[str], concurrency: int = 20) -> None:
    """Each user asks for their QR, the emulator "scans" it, and the session is WORKING."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as gw, httpx.AsyncClient(base_url=waha, timeout=60) as wa:

        async def one(i: int, user: str) -> None:
            auth = {"Authorization": f"Bearer {token(user)}"}
            async with gate:
                r = await gw.get("/api/v1/waha/qr", headers=auth)
                r.raise_for_status()
                r = await wa.post(f"/_emulator/sessions/{session_name_for(user)}/scan", json={"phone": f"1555{i:07d}"})
                r.raise_for_status()
                for _ in range(200):
                    r = await gw.get("/api/v1/waha/status", headers=auth)
                    if r.status_code == 200 and r.json()["status"] == "WORKING":
                        return
                    await asyncio.sleep(0.1)
                raise RuntimeError(f"{user} not WORKING")

        await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def sample_answers(gateway: str, user: str) -> tuple[dict, dict]:
    auth = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as gw:
        status = (await gw.get("/api/v1/waha/status", headers=auth)).json()
        sent = (await gw.post("/api/v1/waha/messages", headers=auth, json=SEND_BODY)).json()
    return status, sent


def run(ctx: Context) -> list[Row]:
    duration, warmup = ctx.seconds(4, 3), ctx.seconds(1, 1)
    users = payloads.users("gw", CLIENTS)
    results: dict[str, dict[str, list]] = {k: {"sut": [], "base": []} for k in ("status", "send")}
    errors = 0
    with whole_system(ctx, "gw", env={"MAX_SESSIONS": "5000"}) as system:
        gateway, waha = system.url("gateway"), system.waha_url
        ctx.say(f"  connecting {CLIENTS} users")
        asyncio.run(connect_users(gateway, waha, users))
        status_body, sent_body = asyncio.run(sample_answers(gateway, users[0]))
        base_port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_api", str(base_port), json.dumps(status_body), json.dumps(sent_body)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port("127.0.0.1", base_port, 60, baseline)
            tokens = [token(u) for u in users]
            sut = {"port": system.config.ports["gateway"], "tokens": tokens, "concurrency": CLIENTS, "duration": duration,
                   "warmup": warmup}
            base = {**sut, "port": base_port}
            for i in range(ctx.runs):
                ctx.say(f"  gateway run {i + 1}/{ctx.runs}")
                for kind in ("status", "send"):
                    # Sends take seconds under this load: a longer warm-up, so the window sees the steady state.
                    longer = {"warmup": warmup * 3, "duration": duration + 2} if kind == "send" else {}
                    b = run_loadgen("bench.gateway:drive", {**base, "kind": kind, **longer})
                    s = run_loadgen("bench.gateway:drive", {**sut, "kind": kind, **longer})
                    results[kind]["base"].append(b)
                    results[kind]["sut"].append(s)
                    errors += s["requests"] - s["ok"] + s["errors"]
                    ctx.say(f"    {kind}: {s['per_second']:.0f}/s p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms "
                            f"(baseline {b['per_second']:.0f}/s, p99 {b['p99_ms']:.1f} ms) {s['statuses']}")
        finally:
            baseline.terminate()
            baseline.wait(10)
    raw = "FastAPI answering the same JSON, no broker"
    rows = []
    for kind, label in (("status", "GET status"), ("send", "POST send")):
        sut_runs, base_runs = results[kind]["sut"], results[kind]["base"]
        rows += [
            Row("4. Gateway", f"{label}: requests/s ({CLIENTS} clients)", "/s", [r["per_second"] for r in sut_runs],
                [r["per_second"] for r in base_runs], raw, note=f"{errors} non-2xx" if errors and kind == "send" else ""),
            Row("4. Gateway", f"{label}: p50", "ms", [r["p50_ms"] for r in sut_runs], [r["p50_ms"] for r in base_runs], raw,
                higher_is_better=False),
            Row("4. Gateway", f"{label}: p99", "ms", [r["p99_ms"] for r in sut_runs], [r["p99_ms"] for r in base_runs], raw,
                higher_is_better=False),
        ]
    return rows



