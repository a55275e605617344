"""2. Persister: events per second from its queue into MongoDB, one persister process.

The system: `<p>.persister.events` is filled with N `message.received` events (100 users, 10
chats each) while no persister runs; then one persister process starts and drains it. The rate is
taken from what it wrote: the events stored after the first write began, over the time between the
first and the last write (`storedAt`), so process start-up is not counted.
The baseline: one process writing the same documents into the same MongoDB-wire server with raw
PyMongo async `bulk_write`, unordered, in batches of the persister's batch size, two batches at
once like the persister: the very operations the persister makes of those events (message
inserts, then the chats' `lastMessage` conditional upserts), prepared before the clock starts.
"""

import asyncio
import json
import time

import aio_pika
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from fleet_devtools.localdev import wait_until
from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.routing import user_key
from fleet_shared.topology import Topology, declare_topology_at
from persister.config import Settings as PersisterSettings
from persister.store import MESSAGES, Store, chat_update, message_insert

from . import payloads
from .common import (
    PARTITIONS,
    Context,
    Row,
    fresh_prefix,
    mongodb,
    purge,
    queue_depth,
    run_loadgen,
    scratch_database,
    service,
    service_env,
)

USERS, CHATS = 100, 10
WRITERS = 2  # batches written at once, as the persister does (`EventBatcher`)
# The persister's largest batch (128 when it had no batching yet, to compare against the same baseline).
BATCH = getattr(PersisterSettings.model_fields.get("batch_max_size"), "default", 128)


def _events(count: int, tag: str) -> list:
    base = int(time.time()) - 3600
    return [
        payloads.received_event(f"per{i % USERS:03d}", f"{tag}{i:08d}", payloads.sender_of((i // USERS) % CHATS),
                                timestamp=base + i)
        for i in range(count)
    ]


async def fill(spec: dict) -> dict:
    """Publish the events (confirmed, persistent) to the events exchange, as webhook-ingest would."""
    connection = await aio_pika.connect(spec["url"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(spec["exchange"], ensure=False)
        gate = asyncio.Semaphore(128)

        async def one(env) -> None:
            body = json.dumps(env.wire()).encode()
            message = aio_pika.Message(body, content_type="application/json", message_id=env.id, type=env.type,
                                       headers={"x-user-id": env.user_id, "x-schema-version": 1}, delivery_mode=2)
            async with gate:
                await exchange.publish(message, routing_key=user_key(env.user_id, env.type), timeout=30)

        await asyncio.gather(*(one(env) for env in _events(spec["count"], spec["tag"])))
    return {"published": spec["count"]}


async def raw_bulk(spec: dict) -> dict:
    """Baseline: the same write operations with raw `bulk_write`, `writers` batches at once."""
    client = AsyncMongoClient(spec["mongodb_url"])
    try:
        db = client[spec["database"]]
        await Store(db).ensure_indexes()  # the same indexes, so the same work per write
        events = _events(spec["count"], spec["tag"])
        now = time.time()
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(now, UTC)
        batches = []
        for i in range(0, len(events), spec["batch"]):
            chunk = events[i : i + spec["batch"]]
            # Each chat's conditional write, as the persister writes it.
            chats = [chat_update(e, stamp) for e in chunk]
            batches.append(([message_insert(e, stamp) for e in chunk], chats))
        conflicts = 0
        queue = iter(batches)

        async def writer() -> None:
            nonlocal conflicts
            for messages, chats in queue:
                await db[MESSAGES].bulk_write(messages, ordered=False)
                try:
                    await db["chats"].bulk_write(chats, ordered=False)
                except BulkWriteError as exc:  # not expected: chats are distinct within a batch
                    conflicts += len(exc.details.get("writeErrors", []))

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(spec["writers"])))
        seconds = time.perf_counter() - started
        written = await db[MESSAGES].count_documents({})
        return {"per_second": len(events) / seconds, "seconds": seconds, "written": written, "conflicts": conflicts}
    finally:
        await client.close()


async def _drained_rate(mongodb_url: str, database: str, count: int, timeout: float) -> dict:
    client = AsyncMongoClient(mongodb_url)
    try:
        messages = client[database][MESSAGES]

        async def all_stored() -> bool:
            return await messages.estimated_document_count() >= count

        await wait_until(all_stored, timeout=timeout, interval=0.25, what=f"{count} messages stored")
        first = await messages.find({}, {"storedAt": 1}).sort("storedAt", 1).limit(1).to_list()
        last = await messages.find({}, {"storedAt": 1}).sort("storedAt", -1).limit(1).to_list()
        t0, t1 = first[0]["storedAt"], last[0]["storedAt"]
        in_first = await messages.count_documents({"storedAt": t0})
        seconds = (t1 - t0).total_seconds()
        return {"per_second": (count - in_first) / seconds if seconds > 0 else None, "seconds": seconds}
    finally:
        await client.close()


def run(ctx: Context) -> list[Row]:
    count = ctx.n(2_000, 1_000)
    prefix = fresh_prefix("per")
    topology = Topology(prefix, PARTITIONS)
    asyncio.run(declare_topology_at(ctx.rabbitmq_url, topology))
    sut, base, notes = [], [], []
    # Each run's baseline and system write databases of their own, dropped once their writers have stopped.
    with mongodb(ctx, "persister") as mongodb_url:
        try:
            for i in range(ctx.runs):
                ctx.say(f"  persister run {i + 1}/{ctx.runs} ({count} events)")
                with scratch_database(mongodb_url, f"{prefix}raw{i}") as raw_database:  # its writer is a process
                    b = run_loadgen("bench.persister:raw_bulk", {"mongodb_url": mongodb_url, "database": raw_database,
                                                                "count": count, "batch": BATCH, "writers": WRITERS,
                                                                "tag": f"r{i}_"})
                base.append(b["per_second"])
                run_loadgen("bench.persister:fill", {"url": ctx.rabbitmq_url, "exchange": topology.events,
                                                     "count": count, "tag": f"p{i}_"})
                asyncio.run(purge(ctx.rabbitmq_url, [topology.orchestrator_activity]))
                database = f"{prefix}sut{i}"
                env = service_env(ctx, prefix, MONGODB_URL=mongodb_url, MONGODB_DATABASE=database)
                # Dropped once the persister has stopped (the inner block is left first).
                with scratch_database(mongodb_url, database), service(ctx, "persister", "persister", env):
                    s = asyncio.run(_drained_rate(mongodb_url, database, count, timeout=300))
                sut.append(s["per_second"])
                left = asyncio.run(queue_depth(ctx.rabbitmq_url, topology.persister_events))
                if left:
                    notes.append(f"{left} left in the queue")
                    asyncio.run(purge(ctx.rabbitmq_url, [topology.persister_events]))
                ctx.say(f"    {sut[-1]:.0f} events/s vs raw bulk_write {base[-1]:.0f}/s")
        finally:
            asyncio.run(delete_topology(ctx.rabbitmq_url, topology))
    return [
        Row("2. Persister", f"events/s queue → MongoDB ({count} events)", "/s", sut, base,
            f"PyMongo async bulk_write, batches of {BATCH}, {WRITERS} at once", "≥ 0.8× baseline", lambda v, r: r is not None and r >= 0.8,
            note="; ".join(notes)),
    ]
