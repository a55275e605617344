"""1. Ingest: signed webhooks accepted per second by one webhook-ingest process, and latency at 500/s.

The system: one webhook-ingest process (HMAC check, parse, map, publish with confirm, 2xx after the
confirm), fed by a load-generator process over keep-alive HTTP connections.
The baseline: one process publishing the same events (the envelopes ingest makes of those
webhooks, prepared before the clock starts) with aio-pika, persistent, mandatory, each awaited
for its publisher confirm, to the same exchange and routing keys, so into the same quorum queue
(`persister.events`). Same concurrency, same duration. (Ingest also publishes one `session.active`
per user and minute: 100 a minute, against thousands of webhooks a second.)
"""

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika

from fleet_shared.broker import amqp_properties
from fleet_shared.routing import user_key
from fleet_shared.topology import Topology

from . import payloads
from .common import PARTITIONS, SECRETS, Context, Row, fresh_prefix, purge, run_loadgen, service, service_env
from .http1 import Recorder, closed_loop, open_loop

CONCURRENCY = 64
RATE = 500
USERS = 100
DISTINCT = 5000  # distinct webhooks; the load generator goes round them


def _hooks(count: int) -> list[tuple[str, str, str]]:
    names = payloads.users("ing", USERS)
    return [(names[i % USERS], f"BENCH{i:08d}", payloads.sender_of(i)) for i in range(count)]


def _requests(spec: dict) -> list[bytes]:
    return [payloads.signed_post(spec["port"], spec["hmac_key"], payloads.message_webhook(u, raw, s))
            for u, raw, s in _hooks(DISTINCT)]


async def drive_throughput(spec: dict) -> dict:
    requests = itertools.cycle(_requests(spec))
    return await closed_loop(spec["port"], requests, concurrency=spec["concurrency"], duration=spec["duration"],
                             warmup=spec["warmup"])


async def drive_rate(spec: dict) -> dict:
    requests = itertools.cycle(_requests(spec))
    return await open_loop(spec["port"], requests, rate=spec["rate"], duration=spec["duration"], warmup=spec["warmup"])


def _messages() -> list[tuple[aio_pika.Message, str]]:
    out = []
    for u, raw, s in _hooks(DISTINCT):
        env = payloads.received_event(u, raw, s)
        props = amqp_properties(env)
        message = aio_pika.Message(
            json.dumps(env.wire()).encode(),
            content_type="application/json",
            message_id=props["message_id"],
            headers=props["headers"],
            type=props["message_type"],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        out.append((message, user_key(env.user_id, env.type)))
    return out


@asynccontextmanager
async def raw_publisher(spec: dict) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """The baseline's publish: the next prepared envelope, with aio-pika, confirmed (answers 200)."""
    messages = itertools.cycle(_messages())
    connection = await aio_pika.connect(spec["url"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(spec["exchange"], ensure=False)

        async def publish() -> int:
            message, key = next(messages)
            await exchange.publish(message, routing_key=key, mandatory=True, timeout=30)
            return 200

        yield publish


async def raw_publish(spec: dict) -> dict:
    """Baseline: confirmed publishing with aio-pika, closed loop (`rate` absent) or at a fixed rate."""
    async with raw_publisher(spec) as publish:
        if spec.get("rate"):
            return await _rate(publish, spec["rate"], spec["duration"], spec["warmup"])
        return await _closed(publish, spec["concurrency"], spec["duration"], spec["warmup"])


async def _closed(call, concurrency: int, duration: float, warmup: float) -> dict:
    recorder = Recorder()
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + duration

    async def worker() -> None:
        while (began := time.perf_counter()) < window_end:
            status = await call()
            done = time.perf_counter()
            if window_start <= done <= window_end:
                recorder.add(done - began, status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return recorder.result(duration)


async def _rate(call, rate: float, duration: float, warmup: float) -> dict:
    recorder = Recorder()
    tasks: set[asyncio.Task] = set()
    start = time.perf_counter() + 0.05
    warm = int(warmup * rate)

    async def one(planned: float, measured: bool) -> None:
        status = await call()
        if measured:
            recorder.add(time.perf_counter() - planned, status)

    for i in range(int((warmup + duration) * rate)):
        planned = start + i / rate
        if (delay := planned - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(planned, i >= warm))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    return recorder.result(duration)


def run(ctx: Context) -> list[Row]:
    prefix = fresh_prefix("ing")
    topology = Topology(prefix, PARTITIONS)
    queues = [topology.persister_events, topology.orchestrator_activity]
    duration, warmup = ctx.seconds(4, 2), ctx.seconds(1, 0.5)
    rate_duration = ctx.seconds(5, 3)
    tput, base_tput, p50, p99, base_p50, base_p99, sut_errors = [], [], [], [], [], [], 0
    with service(ctx, "webhook-ingest", "webhook_ingest", service_env(ctx, prefix)) as ingest:
        http = {"port": ingest.port, "hmac_key": SECRETS["WEBHOOK_HMAC_KEY"]}
        amqp = {"url": ctx.rabbitmq_url, "exchange": topology.events}
        # Once untimed, so connections, caches and the queues are warm for both sides.
        run_loadgen("bench.ingest:drive_throughput", {**http, "concurrency": CONCURRENCY, "duration": 1, "warmup": 0})
        for i in range(ctx.runs):
            ctx.say(f"  ingest run {i + 1}/{ctx.runs}")
            b = run_loadgen("bench.ingest:raw_publish", {**amqp, "concurrency": CONCURRENCY, "duration": duration, "warmup": warmup})
            asyncio.run(purge(ctx.rabbitmq_url, queues))
            s = run_loadgen("bench.ingest:drive_throughput", {**http, "concurrency": CONCURRENCY, "duration": duration, "warmup": warmup})
            asyncio.run(purge(ctx.rabbitmq_url, queues))
            base_tput.append(b["per_second"])
            tput.append(s["per_second"])
            sut_errors += s["requests"] - s["ok"] + s["errors"]
            b = run_loadgen("bench.ingest:raw_publish", {**amqp, "rate": RATE, "duration": rate_duration, "warmup": warmup})
            asyncio.run(purge(ctx.rabbitmq_url, queues))
            s = run_loadgen("bench.ingest:drive_rate", {**http, "rate": RATE, "duration": rate_duration, "warmup": warmup})
            asyncio.run(purge(ctx.rabbitmq_url, queues))
            base_p50.append(b["p50_ms"])
            base_p99.append(b["p99_ms"])
            p50.append(s["p50_ms"])
            p99.append(s["p99_ms"])
            sut_errors += s["requests"] - s["ok"] + s["errors"]
            ctx.say(f"    {tput[-1]:.0f}/s vs raw {base_tput[-1]:.0f}/s; at {RATE}/s p50 {p50[-1]:.1f} ms p99 {p99[-1]:.1f} ms")
    from fleet_devtools.testing.fixtures import delete_topology

    asyncio.run(delete_topology(ctx.rabbitmq_url, topology))
    note = f"{sut_errors} non-2xx/failed" if sut_errors else ""
    raw = "aio-pika confirmed publish, 1 process"
    return [
        Row("1. Ingest", f"webhooks/s accepted ({CONCURRENCY} connections)", "/s", tput, base_tput, raw,
            "≥ 0.5× baseline", lambda v, r: r is not None and r >= 0.5, note=note),
        Row("1. Ingest", f"p50 latency at {RATE}/s", "ms", p50, base_p50, raw, "", higher_is_better=False),
        Row("1. Ingest", f"p99 latency at {RATE}/s", "ms", p99, base_p99, raw, "≤ 25 ms",
            lambda v, r: v <= 25, higher_is_better=False),
    ]
