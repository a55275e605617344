"""3. End to end: a webhook in → the message readable through the gateway, 200 messages/s over 100 users.

The system: the whole stack as processes (SecantusDB, emulator, the four services), with 100
users whose sessions are WORKING (connected once, through the gateway and the emulator, as real
users would be before WhatsApp sends them anything). A load generator posts signed `message`
webhooks to webhook-ingest at a fixed 200/s, round-robin over the 100 users (one chat each, a new
one every run), and reads each user's newest messages through the gateway
(`GET /api/v1/waha/messages`) every 20 ms while one of theirs is not visible yet (a user's poller
that was idle reads first 20 ms after the webhook is answered, not at once). Latency: from the planned send time of the webhook to the
answer of the first read that contains the message. Full runs also measure 100/s and 50/s.
The baseline: the same hops without the services, in processes of their own: the same events
published with confirm to a quorum queue at 200/s; a consumer process gathers the deliveries
(like the persister), writes them with one `insert_many` and acks; the load generator polls
MongoDB directly for the user's newest messages in the same rhythm. So: broker + database + polling,
nothing of ours.
"""

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aio_pika
from pymongo import AsyncMongoClient

from fleet_shared.topology import Topology
from local_launcher.tokens import make_token

from . import payloads
from .common import (
    PARTITIONS,
    SECRETS,
    Context,
    Row,
    fresh_prefix,
    mongodb,
    purge,
    run_loadgen,
    scratch_database,
    whole_system,
)
from .gateway import connect_users
from .http1 import Connection, build_request
from .stats import summarize

USERS = 100
RATE = 200
LOWER_RATES = (100, 50)  # full runs: to show the rates this machine keeps up with
POLL = 0.02
SETTLE = 10.0  # how long a message may take before it counts as missing


class _Tracker:
    """Messages sent and not seen yet, per user; the latencies of those seen."""

    def __init__(self, users: list[str]) -> None:
        self.pending: dict[str, dict[str, tuple[float, bool]]] = {u: {} for u in users}
        self.wake: dict[str, asyncio.Event] = {u: asyncio.Event() for u in users}
        self.latencies: list[float] = []
        self.polls = 0
        self.done = False

    def sent(self, user: str, wa_id: str, planned: float, measured: bool) -> None:
        self.pending[user][wa_id] = (planned, measured)
        self.wake[user].set()

    def seen(self, user: str, ids: set[str]) -> None:
        now = time.perf_counter()
        waiting = self.pending[user]
        for wa_id in ids & waiting.keys():
            planned, measured = waiting.pop(wa_id)
            if measured:
                self.latencies.append(now - planned)

    def missing(self) -> int:
        return sum(1 for p in self.pending.values() for _, measured in p.values() if measured)


def _users(spec: dict) -> list[str]:
    """The users a run sends to: `spec["users"]` (connected beforehand) or fresh ones named after the run."""
    return payloads.users(spec.get("users", spec["tag"]), USERS)


def _sender(spec: dict, index: int) -> str:
    """The one chat of the user at `index` in this run (`chat_base`: each run its own chats, up to
    1,000 senders: beyond 10 runs × rates, runs share chats again)."""
    return payloads.sender_of(spec.get("chat_base", 0) + index)


async def _run(spec: dict, send, read) -> dict:
    """Send at RATE (`send(i, user)` answers the WhatsApp id or None), poll with `read(user)` -> ids."""
    users = _users(spec)
    tracker = _Tracker(users)
    rate = spec.get("rate", RATE)
    total = int((spec["warmup"] + spec["duration"]) * rate)
    warm = int(spec["warmup"] * rate)
    send_failures = 0

    async def poller(user: str) -> None:
        while not tracker.done:
            if not tracker.pending[user]:
                tracker.wake[user].clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tracker.wake[user].wait(), 1.0)
                continue
            # Not at once: a message whose webhook was just answered still has to cross the broker
            # and the persister's batch window, so that read would always miss and only add load.
            await asyncio.sleep(POLL)
            tracker.polls += 1
            try:
                tracker.seen(user, await read(user))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass

    pollers = [asyncio.create_task(poller(u)) for u in users]
    sends: set[asyncio.Task] = set()
    start = time.perf_counter() + 0.1

    async def one(i: int, planned: float) -> None:
        nonlocal send_failures
        user = users[i % USERS]
        wa_id = await send(i, user)
        if wa_id is None:
            send_failures += 1
        else:
            tracker.sent(user, wa_id, planned, i >= warm)

    for i in range(total):
        planned = start + i / rate
        if (delay := planned - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, planned))
        sends.add(task)
        task.add_done_callback(sends.discard)
    if sends:
        await asyncio.wait(sends, timeout=30)
    settle_until = time.perf_counter() + SETTLE
    while any(tracker.pending.values()) and time.perf_counter() < settle_until:
        await asyncio.sleep(0.05)
    tracker.done = True
    for task in pollers:
        task.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    elapsed = time.perf_counter() - start
    # A message never seen counts as seen at the deadline, so it weighs on the percentiles.
    missing = tracker.missing()
    latencies = tracker.latencies + [SETTLE] * missing
    return {
        "messages": total - warm,
        "seen": len(tracker.latencies),
        "missing": missing,
        "send_failures": send_failures,
        "polls_per_second": tracker.polls / elapsed,
        **summarize(latencies),
    }


async def drive(spec: dict) -> dict:
    """The system: webhooks into webhook-ingest, reads through the gateway."""
    ingest_port, gateway_port = spec["ingest_port"], spec["gateway_port"]
    free: list[Connection] = []
    readers: dict[str, tuple[Connection, bytes]] = {}
    users = _users(spec)
    for index, user in enumerate(users):
        chat = f"{_sender(spec, index)}@c.us"
        headers = {"Authorization": f"Bearer {make_token(spec['jwt_secret'], user, lifetime=3600)}"}
        readers[user] = (Connection(gateway_port), build_request("GET", f"/api/v1/waha/messages?chatId={chat}&limit=20",
                                                                 gateway_port, headers))
    index_of = {u: i for i, u in enumerate(users)}

    async def send(i: int, user: str) -> str | None:
        raw_id = f"{spec['tag']}{i:07d}"
        sender = _sender(spec, index_of[user])
        request = payloads.signed_post(ingest_port, spec["hmac_key"], payloads.message_webhook(user, raw_id, sender))
        conn = free.pop() if free else Connection(ingest_port)
        try:
            status, _ = await conn.request(request)
        except (OSError, asyncio.IncompleteReadError):
            conn.close()
            return None
        free.append(conn)
        return f"false_{sender}@c.us_{raw_id}" if 200 <= status < 300 else None

    async def read(user: str) -> set[str]:
        conn, request = readers[user]
        status, body = await conn.request(request)
        if status != 200:
            return set()
        return {m["id"] for m in json.loads(body)["items"]}

    return await _run(spec, send, read)


async def raw_consumer(spec: dict) -> dict:
    """Baseline consumer: gather deliveries for a few ms, one insert_many, then ack them."""
    client = AsyncMongoClient(spec["mongodb_url"])
    messages = client[spec["database"]]["messages"]
    await messages.create_index([("userId", 1), ("chatId", 1), ("timestamp", -1), ("id", -1)])
    connection = await aio_pika.connect(spec["url"])
    inbox: asyncio.Queue = asyncio.Queue()
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=256)
        queue = await channel.get_queue(spec["queue"], ensure=False)
        await queue.consume(inbox.put)
        deadline = time.monotonic() + spec["seconds"]
        stored = 0
        while time.monotonic() < deadline:
            try:
                first = await asyncio.wait_for(inbox.get(), 0.5)
            except TimeoutError:
                continue
            await asyncio.sleep(0.005)
            batch = [first] + [inbox.get_nowait() for _ in range(inbox.qsize())]
            docs = []
            for delivery in batch:
                env = json.loads(delivery.body)
                docs.append({"userId": env["userId"], **env["data"]})
            await messages.insert_many(docs, ordered=False)
            for delivery in batch:
                await delivery.ack()
            stored += len(batch)
    await client.close()
    return {"stored": stored}


async def raw_drive(spec: dict) -> dict:
    """Baseline load: confirmed publishes at RATE into the queue, reads straight from MongoDB."""
    client = AsyncMongoClient(spec["mongodb_url"])
    messages = client[spec["database"]]["messages"]
    connection = await aio_pika.connect(spec["url"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        index_of = {u: i for i, u in enumerate(_users(spec))}

        async def send(i: int, user: str) -> str | None:
            raw_id = f"{spec['tag']}{i:07d}"
            env = payloads.received_event(user, raw_id, _sender(spec, index_of[user]))
            message = aio_pika.Message(json.dumps(env.wire()).encode(), message_id=env.id, delivery_mode=2)
            try:
                await channel.default_exchange.publish(message, routing_key=spec["queue"], timeout=10)
            except Exception:
                return None
            return env.data.id

        async def read(user: str) -> set[str]:
            chat = f"{_sender(spec, index_of[user])}@c.us"
            cursor = messages.find({"userId": user, "chatId": chat}, {"id": 1}).sort([("timestamp", -1), ("id", -1)]).limit(20)
            return {doc["id"] async for doc in cursor}

        result = await _run(spec, send, read)
    await client.close()
    return result


def _raw_baseline(ctx: Context, rate: int, duration: float, warmup: float, tag: str) -> dict:
    with mongodb(ctx, "e2e-raw") as mongodb_url, raw_hops(ctx, mongodb_url, warmup + duration) as (spec, _):
        return run_loadgen("bench.e2e:raw_drive", {**spec, "tag": tag, "rate": rate, "duration": duration,
                                                   "warmup": warmup})


@contextmanager
def raw_hops(ctx: Context, mongodb_url: str, seconds: float) -> Iterator[tuple[dict, subprocess.Popen]]:
    """The baseline's quorum queue, database and consumer process, for a load of `seconds`: the
    spec `raw_drive` takes, and the consumer; all gone afterwards."""
    queue = f"benchraw.{uuid.uuid4().hex[:8]}"
    database = fresh_prefix("raw")

    async def declare(delete: bool = False) -> None:
        connection = await aio_pika.connect(ctx.rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            if delete:
                await channel.queue_delete(queue)
            else:
                await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})

    asyncio.run(declare())
    try:
        with scratch_database(mongodb_url, database):
            spec = {"url": ctx.rabbitmq_url, "queue": queue, "mongodb_url": mongodb_url, "database": database,
                    "seconds": seconds + SETTLE + 5}
            consumer = subprocess.Popen([sys.executable, "-m", "bench.loadgen", "bench.e2e:raw_consumer"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
            try:
                consumer.stdin.write(json.dumps(spec))
                consumer.stdin.close()
                time.sleep(2.0)  # let it import and start consuming
                yield spec, consumer
            finally:
                consumer.terminate()
                consumer.wait(10)
    finally:
        asyncio.run(declare(delete=True))


def run(ctx: Context) -> list[Row]:
    duration, warmup = ctx.seconds(5, 4), ctx.seconds(1, 1)
    # The goal's rate, and (full runs) lower ones, to show up to where this machine keeps up.
    rates = [RATE] if ctx.quick else [RATE, *LOWER_RATES]
    figures = {r: {"p50": [], "p99": [], "base_p50": [], "base_p99": [], "notes": []} for r in rates}
    users_tag = "e2e"
    with whole_system(ctx, "e2e") as system:
        topology = Topology(system.config.env["BROKER_PREFIX"], PARTITIONS)
        ctx.say(f"  connecting {USERS} users")
        asyncio.run(connect_users(system.url("gateway"), system.waha_url, payloads.users(users_tag, USERS)))
        spec = {"ingest_port": system.config.ports["webhook-ingest"], "gateway_port": system.config.ports["gateway"],
                "hmac_key": SECRETS["WEBHOOK_HMAC_KEY"], "jwt_secret": SECRETS["JWT_SECRET"], "users": users_tag}
        for i in range(ctx.runs):
            for n, rate in enumerate(rates):
                f = figures[rate]
                ctx.say(f"  e2e run {i + 1}/{ctx.runs} at {rate}/s")
                tag = f"e{i}r{rate}{uuid.uuid4().hex[:4]}"
                b = _raw_baseline(ctx, rate, duration, warmup, "r" + tag)
                s = run_loadgen("bench.e2e:drive", {**spec, "tag": tag, "chat_base": (i * len(rates) + n) * USERS,
                                                    "rate": rate, "duration": duration, "warmup": warmup})
                # Whatever the system did not catch up with must not weigh on the next measurement.
                asyncio.run(purge(ctx.rabbitmq_url, [topology.persister_events, topology.orchestrator_activity]))
                f["p50"].append(s["p50_ms"])
                f["p99"].append(s["p99_ms"])
                f["base_p50"].append(b["p50_ms"])
                f["base_p99"].append(b["p99_ms"])
                if s["missing"] or s["send_failures"]:
                    f["notes"].append(f"run {i + 1}: {s['missing']} of {s['messages']} not readable within "
                                      f"{SETTLE:.0f} s (counted as {SETTLE:.0f} s), {s['send_failures']} webhooks refused")
                ctx.say(f"    p50 {_ms(s['p50_ms'])} p99 {_ms(s['p99_ms'])} (raw {_ms(b['p50_ms'])} / {_ms(b['p99_ms'])}); "
                        f"{s['seen']}/{s['messages']} seen, {s['polls_per_second']:.0f} reads/s")
    raw = "raw hops: confirmed publish → quorum queue → consumer insert_many → MongoDB polled"
    rows = []
    for rate in rates:
        f = figures[rate]
        goal = ("≤ 250 ms", lambda v, r: v <= 250) if rate == RATE else ("", None)
        rows += [
            Row("3. End to end", f"webhook → readable via gateway, p50 at {rate}/s, {USERS} users", "ms", f["p50"],
                f["base_p50"], raw, "", higher_is_better=False),
            Row("3. End to end", f"webhook → readable via gateway, p99 at {rate}/s, {USERS} users", "ms", f["p99"],
                f["base_p99"], raw, goal[0], goal[1], higher_is_better=False, note="; ".join(f["notes"])),
        ]
    return rows


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"

