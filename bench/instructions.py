"""`python -m bench.instructions`: benchmark 1 counted in CPU instructions instead of seconds.

CPU time per webhook moves by ±15 % from run to run on a shared machine, more than most changes
worth measuring. Instructions do not: valgrind's callgrind counts them, whatever the load.

The system: one webhook-ingest process under callgrind, driven by the benchmark's closed-loop load
generator (64 connections); the counters are zeroed after a warm-up and dumped after the measured
loop, and the webhooks it answered in between come from its own `/metrics`.
The baseline: benchmark 1's raw aio-pika confirmed publishing of the same envelopes (64 at once),
in a process under callgrind that zeroes and dumps its own counters around the measured publishes.
Both run at once, one core each. Needs `valgrind` on the PATH; takes ~3 minutes (a Python process
under callgrind starts in about two).
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import aio_pika
import httpx

from fleet_devtools.localdev import free_port
from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.topology import Topology
from local_launcher.processes import Child, python_module

from .common import PARTITIONS, SECRETS, Context, fresh_prefix, run_loadgen, service_env
from .ingest import raw_publisher

CONCURRENCY = 64
WARMUP_SECONDS = 5
MEASURED_SECONDS = 15
RAW_WARMUP, RAW_MEASURED = 300, 1500  # publishes
START_TIMEOUT = 600  # seconds: imports under callgrind are ~50x slower


def callgrind(out_dir: Path, *command: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out_dir}/callgrind.%p", *command]


def instructions_dumped(out_dir: Path, pid: int) -> int:
    """Instructions counted between the zeroing and the dump (`callgrind_control -d` writes `.1`)."""
    dump = out_dir / f"callgrind.{pid}.1"
    match = re.search(r"^summary:\s*(\d+)", dump.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no summary line in {dump}")
    return int(match.group(1))


def control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def published(port: int) -> float:
    """Webhooks the ingest has published (refused or 503-answered ones are not a webhook's work)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    prefix = 'webhook_ingest_webhooks_total{outcome="published"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def wait_until_ready(port: int) -> None:
    """`/healthz` answers before the broker connection is up; `/readyz` only after."""
    deadline = time.monotonic() + START_TIMEOUT
    while httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=60).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"webhook-ingest not ready after {START_TIMEOUT} s")
        time.sleep(1)


def all_accepted(result: dict) -> dict:
    if result["errors"] or result["ok"] != result["requests"]:
        raise RuntimeError(f"webhook-ingest refused or failed webhooks under callgrind: {result}")
    return result


async def raw_publish_counted(spec: dict) -> dict:
    """Baseline, run under callgrind: warm up, zero, publish `measured` messages 64 at a time, dump."""
    async with raw_publisher(spec) as publish:

        async def publish_all(count: int) -> None:
            left = iter(range(count))

            async def worker() -> None:
                for _ in left:
                    await publish()

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

        await publish_all(spec["warmup"])
        control("-z", os.getpid())
        await publish_all(spec["measured"])
        control("-d", os.getpid())
    return {"pid": os.getpid()}


def ingest_counted(ctx: Context, prefix: str, out_dir: Path) -> tuple[int, float]:
    """(instructions, webhooks answered) of one webhook-ingest under callgrind."""
    port = free_port()
    child = Child("webhook-ingest", callgrind(out_dir, *python_module("webhook_ingest")), port,
                  env={"PORT": str(port)}, log_path=ctx.log_dir / "ingest.log")
    try:
        child.start(service_env(ctx, prefix), timeout=START_TIMEOUT)
        wait_until_ready(port)
        spec = {"port": port, "hmac_key": SECRETS["WEBHOOK_HMAC_KEY"], "concurrency": CONCURRENCY, "warmup": 0}
        all_accepted(run_loadgen("bench.ingest:drive_throughput", {**spec, "duration": WARMUP_SECONDS}))
        before = published(port)
        control("-z", child.process.pid)
        all_accepted(run_loadgen("bench.ingest:drive_throughput", {**spec, "duration": MEASURED_SECONDS}))
        control("-d", child.process.pid)
        return instructions_dumped(out_dir, child.process.pid), published(port) - before
    finally:
        child.stop(timeout=120)


def raw_counted(ctx: Context, exchange: str, out_dir: Path) -> int:
    """Instructions of the baseline's measured publishes, in a load-generator process under callgrind."""
    spec = {"url": ctx.rabbitmq_url, "exchange": exchange, "warmup": RAW_WARMUP, "measured": RAW_MEASURED}
    proc = subprocess.run(
        callgrind(out_dir, sys.executable, "-m", "bench.loadgen", "bench.instructions:raw_publish_counted"),
        input=json.dumps(spec), capture_output=True, text=True, timeout=START_TIMEOUT * 2,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the baseline failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return instructions_dumped(out_dir, json.loads(lines[-1])["pid"])


async def exchange_declared(url: str, exchange: str) -> bool:
    connection = await aio_pika.connect(url)
    async with connection:
        try:
            await (await connection.channel()).get_exchange(exchange, ensure=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
    return True


def wait_for_exchange(url: str, exchange: str, ingest: Future) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not asyncio.run(exchange_declared(url, exchange)):
        if ingest.done():
            ingest.result()  # raises what stopped it
            raise RuntimeError("webhook-ingest finished without declaring the topology")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{exchange} not declared after {START_TIMEOUT} s")
        time.sleep(1)


def main() -> int:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (callgrind) on the PATH, e.g. `apt-get install valgrind`", file=sys.stderr)
        return 2
    ctx = Context(rabbitmq_url=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
                  log_dir=Path(tempfile.mkdtemp(prefix="waha-fleet-instructions-")))
    topology = Topology(fresh_prefix("ins"), PARTITIONS)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(1) as pool:
            # The ingest declares the topology the baseline publishes into; then both run at once.
            ingest = pool.submit(ingest_counted, ctx, topology.prefix, ctx.log_dir)
            wait_for_exchange(ctx.rabbitmq_url, topology.events, ingest)
            raw_instructions = raw_counted(ctx, topology.events, ctx.log_dir)
            ingest_instructions, webhooks = ingest.result()
    finally:
        asyncio.run(delete_topology(ctx.rabbitmq_url, topology))
    per_webhook, per_publish = ingest_instructions / webhooks, raw_instructions / RAW_MEASURED
    print(f"webhook-ingest: {per_webhook:,.0f} instructions per webhook ({webhooks:,.0f} webhooks)")
    print(f"raw aio-pika confirmed publish: {per_publish:,.0f} instructions per publish ({RAW_MEASURED:,} publishes)")
    print(f"ratio (what benchmark 1's throughput ratio would be with a core each): {per_publish / per_webhook:.2f}x")
    print(f"({time.monotonic() - started:.0f} s; callgrind files and logs in {ctx.log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
