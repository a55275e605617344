"""Where end to end's CPU goes: each process's CPU per message written and per message page read.

`python -m bench.cpu_split` (`make bench-cpu`): the whole stack of benchmark 3 with its 100
connected users, driven twice by a load generator of its own: first webhooks only (benchmark 3's
200/s, so no reads), then reads only (`GET /api/v1/waha/messages`, newest 20 of a user's chat, at
200/s, a little under what benchmark 3's polling makes at 200 messages/s; no writes). For each process (the four
services, the emulator, SecantusDB, and RabbitMQ when its `beam.smp` is found; not the load
generator) it prints the CPU it used, from `/proc/<pid>/stat`, as % of one core and as ms per
operation. Then benchmark 3's own load (webhooks at 200/s and each user's polling through the
gateway), and benchmark 3's raw hops under the same load (confirmed publishes into a quorum
queue, a consumer's `insert_many`, MongoDB polled directly; on a SecantusDB of its own, after the
stack stopped): CPU per message of all processes together, and the ratio (goal ≤ 2.5×). The
system's load generator is the client and is not counted; the raw one publishes and polls, which
are hops, and is. RabbitMQ is shared with whatever else runs on the machine. Nothing is written
to docs/benchmarks.md.
"""

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

from pymongo import AsyncMongoClient

from fleet_devtools.localdev import EmbeddedMongo, wait_until
from local_launcher.tokens import make_token
from persister.store import MESSAGES

from . import payloads
from .common import (
    SECRETS,
    Context,
    children_cpu_seconds,
    cpu_seconds,
    rabbitmq_pid,
    run_loadgen,
    system_pids,
    whole_system,
)
from .e2e import RATE, USERS, raw_hops
from .gateway import connect_users
from .http1 import build_request, open_loop

# Benchmark 3's polling made 238-253 reads/s at 200 messages/s (12:37 UTC full run), but reads alone
# at 250/s saturated that run's instance (147 of 2,000 unanswered), and per-read figures would then
# include the queueing; 200/s stays under that.
READS = 200


async def send_only(spec: dict) -> dict:
    users = payloads.users(spec["users"], USERS)
    key, port = spec["hmac_key"], spec["ingest_port"]
    requests = (
        payloads.signed_post(port, key, payloads.message_webhook(users[i % USERS], f"{spec['tag']}{i:07d}", payloads.sender_of(i % USERS)))
        for i in itertools.count()
    )
    return await open_loop(port, requests, rate=spec["rate"], duration=spec["duration"], warmup=0)


async def read_only(spec: dict) -> dict:
    port = spec["gateway_port"]
    reads = [
        build_request("GET", f"/api/v1/waha/messages?chatId={payloads.sender_of(i)}@c.us&limit=20", port,
                      {"Authorization": f"Bearer {make_token(spec['jwt_secret'], user, lifetime=3600)}"})
        for i, user in enumerate(payloads.users(spec["users"], USERS))
    ]
    return await open_loop(port, itertools.cycle(reads), rate=spec["rate"], duration=spec["duration"], warmup=0)


async def _until_stored(mongodb_url: str, database: str, count: int) -> None:
    """Every accepted webhook's message is in MongoDB (an empty queue is not enough: the persister
    holds up to PREFETCH deliveries it has not written yet)."""
    client = AsyncMongoClient(mongodb_url)
    try:
        messages = client[database][MESSAGES]

        async def stored() -> bool:
            return await messages.estimated_document_count() >= count

        await wait_until(stored, 120, interval=0.1, what=f"{count} messages stored")
    finally:
        await client.close()


def _phase(label: str, target: str, spec: dict, pids: dict[str, int], settle=None, *,
           client_counted: bool = False) -> dict[str, float]:
    """Run the load generator; `settle(result)` waits until the work it caused is done, so its CPU
    is this phase's and not the next one's. Answers the ms of CPU per operation of the processes
    in `pids` (and of the load generator when `client_counted`), by process."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client_before = children_cpu_seconds()
    started = time.perf_counter()
    result = run_loadgen(target, spec)
    client = children_cpu_seconds() - client_before
    if settle is not None:
        settle(result)
    elapsed = time.perf_counter() - started
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    if "messages" in result:  # benchmark 3's load generators: messages sent (the warm-up's too), and those never seen
        operations = result["messages"] + int(spec.get("warmup", 0) * spec["rate"])
        failed = result["missing"] + result["send_failures"]
        unit = "per message"
    else:
        operations = result["requests"] + result["errors"]
        failed = result["requests"] - result["ok"] + result["errors"]
        unit = "per op"
    print(f"\n{label}: {operations} at {spec['rate']}/s over {elapsed:.1f} s (load generator start and settling included), "
          f"{failed} not answered 2xx or not seen {result.get('statuses', '')}")
    print(f"  {'process':22s} {'% of a core':>11s} {'ms ' + unit:>15s}")
    shown = {**used, "load generator": client}
    for name, seconds in sorted(shown.items(), key=lambda item: -item[1]):
        mark = "" if name != "load generator" or client_counted else " (not counted)"
        print(f"  {name + mark:22s} {100 * seconds / elapsed:11.1f} {1000 * seconds / max(operations, 1):15.3f}")
    counted = {**used, **({"load generator": client} if client_counted else {})}
    total = sum(counted.values())
    print(f"  {'all counted':22s} {100 * total / elapsed:11.1f} {1000 * total / max(operations, 1):15.3f}")
    return {name: 1000 * seconds / max(operations, 1) for name, seconds in counted.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_split", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    args = p.parse_args(argv)
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    ctx = Context(rabbitmq_url=url, log_dir=Path(tempfile.mkdtemp(prefix="waha-fleet-cpu-")), say=print)
    users = "cpu"
    with whole_system(ctx, "cpu") as system:
        asyncio.run(connect_users(system.url("gateway"), system.waha_url, payloads.users(users, USERS)))
        pids = system_pids(system)
        spec = {"users": users, "duration": args.seconds, "ingest_port": system.config.ports["webhook-ingest"],
                "gateway_port": system.config.ports["gateway"], "hmac_key": SECRETS["WEBHOOK_HMAC_KEY"],
                "jwt_secret": SECRETS["JWT_SECRET"], "tag": f"c{os.getpid()}"}
        database = system.env["MONGODB_DATABASE"]

        def all_stored(result: dict) -> None:
            stored = result["ok"] if "ok" in result else result["messages"] + 1  # e2e: + the warm-up's
            asyncio.run(_until_stored(system.env["MONGODB_URL"], database, stored))

        _phase("writes (webhooks, no reads)", "bench.cpu_split:send_only", {**spec, "rate": RATE}, pids, all_stored)
        _phase("reads (newest 20 of a chat, no writes)", "bench.cpu_split:read_only", {**spec, "rate": READS}, pids)
        e2e_spec = {**spec, "tag": f"e{os.getpid()}", "chat_base": USERS, "rate": RATE, "warmup": 1.0}
        system_ms = _phase("end to end (benchmark 3: webhooks, polled through the gateway)", "bench.e2e:drive",
                           e2e_spec, pids)
        restarted = [name for name, child in system.children.items() if child.process.pid != pids[name]]
        if restarted:
            print(f"\n{', '.join(restarted)} restarted during the run: their figures are wrong", file=sys.stderr)
    mongo = EmbeddedMongo(log_path=ctx.log_dir / "raw-mongodb.log").start()
    try:
        with raw_hops(ctx, mongo.url, 1.0 + args.seconds) as (raw_spec, consumer):
            raw_pids = {"mongodb (SecantusDB)": mongo.process.pid, "raw consumer": consumer.pid}
            if (rabbitmq := rabbitmq_pid()) is not None:
                raw_pids["rabbitmq"] = rabbitmq
            raw_ms = _phase("raw hops (benchmark 3's baseline: publish, quorum queue, insert_many, MongoDB polled)",
                            "bench.e2e:raw_drive", {**raw_spec, "tag": f"r{os.getpid()}", "rate": RATE,
                                                    "duration": args.seconds, "warmup": 1.0},
                            raw_pids, client_counted=True)
    finally:
        mongo.stop()
    for label, left_out in (("all processes", set()), ("without RabbitMQ (shared with the machine's other work)", {"rabbitmq"})):
        ours = sum(v for k, v in system_ms.items() if k not in left_out)
        raw = sum(v for k, v in raw_ms.items() if k not in left_out)
        print(f"\nend to end CPU per message, {label}: {ours:.2f} ms; raw hops {raw:.2f} ms; "
              f"ratio {ours / raw:.2f}x (goal <= 2.5x)")
    print(f"\nlogs in {ctx.log_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
