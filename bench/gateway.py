"""4. Gateway: status reads and sends through the stack, 100 concurrent clients.

The system: the whole stack as processes; 100 users, each connected (QR, scanned, WORKING). A
load-generator process runs 100 clients, one per user, each with its own keep-alive connection,
back to back: `GET /api/v1/waha/status`, then `POST /api/v1/waha/messages` (gateway → RabbitMQ →
orchestrator → WAHA sendText → reply; the emulator's webhooks of the sent message and its acks
then flow through ingest and persister in the background, as they would); then sends at an
open-loop 50/s, latency from the planned send time.
The status baseline: one FastAPI process on uvicorn answering the same JSON body (taken from the
system's own answer) without the broker and without checking the token (`bench/baseline_api.py`),
driven by the same load generator with the same 100 clients.
The send baseline: the same WAHA sendText (same emulator, same sessions, same body) called directly
by one `httpx.AsyncClient` in one process, what a hand-rolled singleton does: 100 at once, then
50/s. Its webhooks flow through ingest and persister as the system's do.
CPU per send: each process's CPU (`/proc/<pid>/stat`) from the start of a closed-loop send run
until the persister's queue is empty again, over the sends answered 2xx in it (warm-up included);
the load generator's own CPU (`getrusage` of its process) is the client's share.
Per-user limits: the stack runs with USER_RATE and USER_BURST raised to 100,000 (the defaults, 50/s
and 100 per user, would throttle 100 users at several thousand reads/s); USER_MAX_PENDING stays 16
(each client has one request in flight).
"""

import asyncio
import itertools
import json
import subprocess
import sys

import httpx

from fleet_devtools.localdev import free_port, wait_for_port
from fleet_shared.ids import session_name_for
from fleet_shared.topology import Topology

from . import payloads
from .common import (
    SECRETS,
    Context,
    Row,
    children_cpu_seconds,
    cpu_seconds,
    queue_depth,
    run_loadgen,
    system_pids,
    token,
    whole_system,
)
from .http1 import build_request, closed_loop, closed_loop_calls, open_loop, open_loop_calls

CLIENTS = 100
OPEN_RATE = 50  # sends/s of the open loop
STACK_ENV = {"MAX_SESSIONS": "5000", "USER_RATE": "100000", "USER_BURST": "100000"}
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
    """Through the gateway: `CLIENTS` clients back to back (`rate`: an open loop at that rate instead);
    requests go round the users, so each client is mostly one user."""
    requests = itertools.cycle(_requests(spec, spec["kind"]))
    if spec.get("rate"):
        return await open_loop(spec["port"], requests, rate=spec["rate"], duration=spec["duration"], warmup=spec["warmup"])
    return await closed_loop(spec["port"], requests, concurrency=spec["concurrency"], duration=spec["duration"],
                             warmup=spec["warmup"])


async def direct_sends(spec: dict) -> dict:
    """The send baseline: WAHA's sendText straight from one httpx client, round the same sessions."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=spec["waha"], headers={"X-Api-Key": spec["api_key"]}, timeout=30,
                                 limits=limits) as client:
        sessions = itertools.cycle(spec["sessions"])

        async def call() -> int:
            try:
                response = await client.post("/api/sendText", json={"session": next(sessions), **SEND_BODY})
            except httpx.HTTPError as exc:
                raise OSError(repr(exc)) from exc
            return response.status_code

        if spec.get("rate"):
            return await open_loop_calls(call, rate=spec["rate"], duration=spec["duration"], warmup=spec["warmup"])
        return await closed_loop_calls(lambda _: call, concurrency=spec["concurrency"], duration=spec["duration"],
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


def measured(target: str, spec: dict, pids: dict[str, int], settle) -> tuple[dict, dict[str, float]]:
    """Run a load generator; answer its result and each process's CPU seconds until `settle()` returned
    (the load generator's own under "load generator")."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client_before = children_cpu_seconds()
    result = run_loadgen(target, spec)
    client = children_cpu_seconds() - client_before
    settle()
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    return result, {**used, "load generator": client}


async def drained(rabbitmq_url: str, queue: str) -> None:
    """The sends' webhooks (the message, then its acks 0.1 s later) stored: the persister's queue
    stays empty for a second (waits two minutes at most)."""
    quiet = 0
    for _ in range(600):
        quiet = quiet + 1 if await queue_depth(rabbitmq_url, queue) == 0 else 0
        if quiet >= 5:
            return
        await asyncio.sleep(0.2)


def cpu_text(used: dict[str, float], sends: int) -> str:
    parts = [f"{name} {1000 * seconds / max(sends, 1):.2f}" for name, seconds in sorted(used.items(), key=lambda i: -i[1])]
    total = sum(v for k, v in used.items() if k != "load generator")
    return f"CPU ms per send: {', '.join(parts)}; all but the load generator {1000 * total / max(sends, 1):.2f}"


def run(ctx: Context) -> list[Row]:
    duration, warmup = ctx.seconds(4, 3), ctx.seconds(1, 1)
    users = payloads.users("gw", CLIENTS)
    results: dict[str, dict[str, list]] = {k: {"sut": [], "base": []} for k in ("status", "send", "open")}
    cpu: dict[str, list[dict[str, float]]] = {"sut": [], "base": []}
    errors = 0
    with whole_system(ctx, "gw", env=STACK_ENV) as system:
        gateway, waha = system.url("gateway"), system.waha_url
        ctx.say(f"  connecting {CLIENTS} users (stack settings: {STACK_ENV})")
        asyncio.run(connect_users(gateway, waha, users))
        status_body, sent_body = asyncio.run(sample_answers(gateway, users[0]))
        base_port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_api", str(base_port), json.dumps(status_body), json.dumps(sent_body)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        pids = system_pids(system)
        events = Topology(system.config.env["BROKER_PREFIX"], 1).persister_events

        def settle() -> None:
            asyncio.run(drained(ctx.rabbitmq_url, events))

        try:
            wait_for_port("127.0.0.1", base_port, 60, baseline)
            tokens = [token(u) for u in users]
            sut = {"port": system.config.ports["gateway"], "tokens": tokens, "concurrency": CLIENTS, "duration": duration,
                   "warmup": warmup}
            base = {**sut, "port": base_port}
            direct = {"waha": waha, "api_key": SECRETS["WAHA_API_KEY"], "sessions": [session_name_for(u) for u in users],
                      "concurrency": CLIENTS, "duration": duration + 2, "warmup": warmup * 3}
            for i in range(ctx.runs):
                ctx.say(f"  gateway run {i + 1}/{ctx.runs}")
                b = run_loadgen("bench.gateway:drive", {**base, "kind": "status"})
                s = run_loadgen("bench.gateway:drive", {**sut, "kind": "status"})
                _record(ctx, results["status"], "status", s, b)
                errors += s["requests"] - s["ok"] + s["errors"]
                # Sends take longer under this load: a longer warm-up, so the window sees the steady state.
                b, base_cpu = measured("bench.gateway:direct_sends", direct, pids, settle)
                s, sut_cpu = measured("bench.gateway:drive", {**sut, "kind": "send", "warmup": warmup * 3,
                                                              "duration": duration + 2}, pids, settle)
                _record(ctx, results["send"], "send", s, b)
                errors += s["requests"] - s["ok"] + s["errors"]
                cpu["base"].append({k: v / max(b["all_ok"], 1) for k, v in base_cpu.items()})
                cpu["sut"].append({k: v / max(s["all_ok"], 1) for k, v in sut_cpu.items()})
                ctx.say(f"      system {cpu_text(sut_cpu, s['all_ok'])}")
                ctx.say(f"      direct {cpu_text(base_cpu, b['all_ok'])}")
                open_spec = {"rate": OPEN_RATE, "duration": duration + 2, "warmup": warmup}
                b = run_loadgen("bench.gateway:direct_sends", {**direct, **open_spec})
                s = run_loadgen("bench.gateway:drive", {**sut, "kind": "send", **open_spec})
                settle()
                _record(ctx, results["open"], f"send at {OPEN_RATE}/s", s, b)
                errors += s["requests"] - s["ok"] + s["errors"]
        finally:
            baseline.terminate()
            baseline.wait(10)
    return _rows(results, cpu, errors)


def _record(ctx: Context, into: dict[str, list], label: str, s: dict, b: dict) -> None:
    into["sut"].append(s)
    into["base"].append(b)
    ctx.say(f"    {label}: {s['per_second']:.0f}/s p50 {_ms(s['p50_ms'])} p99 {_ms(s['p99_ms'])} "
            f"(baseline {b['per_second']:.0f}/s, p99 {_ms(b['p99_ms'])}) {s['statuses']} {s['errors']} errors")


def _ms(value: float | None) -> str:
    return "— (none answered in the window)" if value is None else f"{value:.1f} ms"


def _rows(results: dict[str, dict[str, list]], cpu: dict[str, list[dict[str, float]]], errors: int) -> list[Row]:
    fastapi = "FastAPI answering the same JSON, no broker"
    direct = "WAHA sendText straight from one httpx client"
    status, send, open_ = results["status"], results["send"], results["open"]
    note = f"{errors} non-2xx" if errors else ""

    def rate(r: dict) -> float:
        return r["per_second"]

    rows = [
        Row("4. Gateway", f"GET status: requests/s ({CLIENTS} clients)", "/s", [rate(r) for r in status["sut"]],
            [rate(r) for r in status["base"]], fastapi),
        Row("4. Gateway", "GET status: p50", "ms", [r["p50_ms"] for r in status["sut"]],
            [r["p50_ms"] for r in status["base"]], fastapi, higher_is_better=False),
        Row("4. Gateway", "GET status: p99", "ms", [r["p99_ms"] for r in status["sut"]],
            [r["p99_ms"] for r in status["base"]], fastapi, "≤ 30 ms", lambda v, r: v <= 30, higher_is_better=False),
        Row("4. Gateway", f"POST send: sends/s ({CLIENTS} clients)", "/s", [rate(r) for r in send["sut"]],
            [rate(r) for r in send["base"]], direct, "≥ 0.3× baseline", lambda v, r: r is not None and r >= 0.3,
            note=note),
        Row("4. Gateway", "POST send: p50", "ms", [r["p50_ms"] for r in send["sut"]], [r["p50_ms"] for r in send["base"]],
            direct, higher_is_better=False),
        Row("4. Gateway", f"POST send: p99 at {OPEN_RATE}/s", "ms", [r["p99_ms"] for r in open_["sut"]],
            [r["p99_ms"] for r in open_["base"]], direct, "≤ 250 ms", lambda v, r: v <= 250, higher_is_better=False),
    ]
    names = sorted({n for run in cpu["sut"] + cpu["base"] for n in run}, key=lambda n: -sum(r.get(n, 0) for r in cpu["sut"]))
    for name in names:
        rows.append(Row("4. Gateway", f"CPU per send: {name}", "ms", [1000 * r.get(name, 0) for r in cpu["sut"]],
                        [1000 * r.get(name, 0) for r in cpu["base"]], direct, higher_is_better=False))
    return rows
