"""8. Webhooks: deliveries per second to a local receiver at 1,000 subscriptions, and p99 event → delivery.

The system: a persister and a webhook-dispatcher process on a fresh prefix; 1,000 users each
register one webhook (`webhook.create`, all to one local receiver, one path per user). Then N
`message.received` events (round robin over the users) are published to `<p>.events`, as
webhook-ingest publishes them, each stamped `occurredAt` = its send time: the persister stores and
numbers them, publishes them to `<p>.stream`, the dispatcher schedules and POSTs each, signed.
Deliveries/s: N over the time from the first publish to the receiver taking the last one. Latency:
the receiver's arrival time minus the event's `occurredAt` (p50, p99).
The baseline, in the same run right after: a plain loop that POSTs the same N bodies to the same
receiver with httpx, each signed (HMAC-SHA512 over `"<t>.<body>"`), as many at once as the
dispatcher may (`WEBHOOK_CONCURRENCY`); latency from the start of each POST to its arrival.
"""

import asyncio
import json
import time
from datetime import UTC, datetime

import aio_pika
import httpx

from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.broker import RpcClient
from fleet_shared.contracts import envelope
from fleet_shared.contracts.events import MessageReceived
from fleet_shared.contracts.webhooks import CreateWebhook
from fleet_shared.routing import user_key
from fleet_shared.topology import Topology, declare_topology_at
from waha_emulator.testing import WebhookReceiver
from webhook_dispatcher.config import Settings as DispatcherSettings
from webhook_dispatcher.signing import SIGNATURE_HEADER, signature

from .common import PARTITIONS, Context, Row, fresh_prefix, mongodb, scratch_database, service, service_env
from .stats import percentile

SUBSCRIPTIONS = 1_000
CONCURRENCY = DispatcherSettings.model_fields["webhook_concurrency"].default
SECRET = "whsec_bench"
DEADLINE = 300.0


def _events(count: int, tag: str) -> list:
    users = [f"hook{u:04d}" for u in range(SUBSCRIPTIONS)]
    return [
        envelope(MessageReceived(id=f"false_1@c.us_{tag}{i}", chat_id="1@c.us", from_me=False, body=f"#{i}",
                                 timestamp=1_700_000_000 + i), users[i % SUBSCRIPTIONS])
        for i in range(count)
    ]


async def _subscribe(url: str, topology: Topology, receiver: WebhookReceiver) -> None:
    rpc = RpcClient(url, topology, "bench-webhooks")
    await rpc.connect()
    try:
        gate = asyncio.Semaphore(32)

        async def one(u: int) -> None:
            async with gate:
                query = CreateWebhook(url=receiver.url_for(f"/hook{u:04d}"), events=["message.*"])
                reply = await rpc.request(topology.queries, envelope(query, f"hook{u:04d}"), 30)
                if not reply.ok:
                    raise RuntimeError(f"webhook.create: {reply.error}")

        await asyncio.gather(*(one(u) for u in range(SUBSCRIPTIONS)))
    finally:
        await rpc.close()


def _latencies(receiver: WebhookReceiver, start: float) -> tuple[float, list[float]]:
    """Deliveries/s and each event's occurredAt → arrival, from what the receiver got (first copies)."""
    first: dict[str, float] = {}
    occurred: dict[str, float] = {}
    for r in receiver.requests:
        event = json.loads(r.body)
        if event["id"] not in first:
            first[event["id"]] = r.at
            occurred[event["id"]] = datetime.fromisoformat(event["occurredAt"]).timestamp()
    last = max(first.values())
    return len(first) / (last - start), [first[k] - occurred[k] for k in first]


async def _system(url: str, topology: Topology, count: int, tag: str) -> dict:
    async with WebhookReceiver() as receiver:
        await _subscribe(url, topology, receiver)
        events = _events(count, tag)
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(topology.events, ensure=False)
            gate = asyncio.Semaphore(CONCURRENCY)

            async def publish(env) -> None:
                async with gate:
                    env.occurred_at = datetime.now(UTC)
                    await exchange.publish(
                        aio_pika.Message(json.dumps(env.wire()).encode(), message_id=env.id, delivery_mode=2),
                        routing_key=user_key(env.user_id, env.type),
                    )

            start = time.time()
            await asyncio.gather(*(publish(env) for env in events))
            deadline = time.monotonic() + DEADLINE
            while len({r.headers.get("webhook-id") for r in receiver.requests}) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(receiver.requests)} of {count} delivered in {DEADLINE:.0f}s")
                await asyncio.sleep(0.05)
        rate, latencies = _latencies(receiver, start)
    return {"per_second": rate, "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


async def _baseline(count: int, tag: str) -> dict:
    async with WebhookReceiver() as receiver:
        bodies = [(f"/hook{i % SUBSCRIPTIONS:04d}", json.dumps({**env.wire(), "seq": i + 1}).encode())
                  for i, env in enumerate(_events(count, tag))]
        sent: dict[int, float] = {}
        gate = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:

            async def one(i: int) -> None:
                path, body = bodies[i]
                async with gate:
                    sent[i] = time.time()
                    headers = {"Content-Type": "application/json", "Webhook-Seq": str(i + 1),
                               SIGNATURE_HEADER: signature(SECRET, int(sent[i]), body)}
                    (await client.post(receiver.url_for(path), content=body, headers=headers)).raise_for_status()

            start = time.time()
            await asyncio.gather(*(one(i) for i in range(count)))
        arrivals = [r.at for r in receiver.requests]
        latencies = [r.at - sent[int(r.headers["webhook-seq"]) - 1] for r in receiver.requests]
    return {"per_second": count / (max(arrivals) - start), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def run(ctx: Context) -> list[Row]:
    count = ctx.n(5_000, 2_000)
    rates, base_rates, p99s, base_p99s = [], [], [], []
    with mongodb(ctx, "webhooks") as mongodb_url:
        for i in range(ctx.runs):
            prefix = fresh_prefix("hook")
            topology = Topology(prefix, PARTITIONS)
            asyncio.run(declare_topology_at(ctx.rabbitmq_url, topology))
            ctx.say(f"  webhooks run {i + 1}/{ctx.runs} ({SUBSCRIPTIONS} subscriptions, {count} events)")
            env = service_env(ctx, prefix, MONGODB_URL=mongodb_url, MONGODB_DATABASE=prefix,
                              WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
            try:
                with scratch_database(mongodb_url, prefix), service(ctx, "persister", "persister", env), \
                        service(ctx, "webhook-dispatcher", "webhook_dispatcher", env):
                    s = asyncio.run(_system(ctx.rabbitmq_url, topology, count, f"r{i}_"))
            finally:
                asyncio.run(delete_topology(ctx.rabbitmq_url, topology))
            b = asyncio.run(_baseline(count, f"b{i}_"))
            rates.append(s["per_second"])
            base_rates.append(b["per_second"])
            p99s.append(s["p99"] * 1000)
            base_p99s.append(b["p99"] * 1000)
            ctx.say(f"    {s['per_second']:.0f} deliveries/s (p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms) "
                    f"vs a signed httpx POST loop {b['per_second']:.0f}/s (p99 {b['p99'] * 1000:.0f} ms)")
    baseline = f"signed httpx POST loop, {CONCURRENCY} at once, same receiver"
    return [
        Row("8. Webhooks", f"deliveries/s at {SUBSCRIPTIONS:,} subscriptions ({count} events)", "/s", rates, base_rates,
            baseline),
        Row("8. Webhooks", "p99 event → delivery", "ms", p99s, base_p99s, baseline, higher_is_better=False),
    ]
