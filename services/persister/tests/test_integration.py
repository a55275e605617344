"""The persister in-process (FastAPI lifespan) against the real RabbitMQ and SecantusDB."""

import asyncio
import json

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from fleet_devtools.localdev import EmbeddedMongo, wait_until
from fleet_shared.broker import RpcClient, make_broker, publish_envelope
from fleet_shared.contracts import envelope
from fleet_shared.contracts.commands import ListChats, ListMessages
from fleet_shared.contracts.events import SessionStatusChanged
from fleet_shared.contracts.stream import ListEvents
from persister.app import create_app
from persister.config import Settings

pytestmark = pytest.mark.integration

ALICE, BOB = "alice", "bob"
CHAT = "111@c.us"
DEADLINE = 15.0


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def make_settings(topology, rabbitmq_url: str, mongodb_url: str, database: str, **kw) -> Settings:
    return Settings(
        environment="dev",
        rabbitmq_url=rabbitmq_url,
        broker_prefix=topology.prefix,
        orchestrator_partitions=topology.partitions,
        mongodb_url=mongodb_url,
        mongodb_database=database,
        **kw,
    )


@pytest.fixture
def settings(topology, rabbitmq_url, mongodb_url, mongo_db) -> Settings:
    return make_settings(topology, rabbitmq_url, mongodb_url, mongo_db.name)


@pytest.fixture
async def running(settings):
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app


@pytest.fixture
async def publisher(settings):
    broker = make_broker(settings, "persister-test-publisher")
    await broker.connect()
    yield broker
    await broker.stop()


@pytest.fixture
async def rpc(settings, topology):
    client = RpcClient(settings.rabbitmq_url, topology, "persister-test")
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def amqp_channel(rabbitmq_url):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield await connection.channel()


async def stored(collection, query: dict, count: int = 1):
    async def check():
        return await collection.count_documents(query) == count

    await wait_until(check, DEADLINE, what=f"{count} document(s) matching {query}")


async def test_events_are_stored(running, publisher, topology, mongo_db, events):
    await publish_envelope(publisher, topology.events, events.ack(ALICE, "w1", 3))  # before its message
    await publish_envelope(publisher, topology.events, events.sent(ALICE, "w1", ts=10, ack=1, body="out"))
    await publish_envelope(publisher, topology.events, events.received(ALICE, "w2", ts=20, body="in", chat_name="Ann"))
    await stored(mongo_db.messages, {"userId": ALICE, "id": "w1", "ack": 3, "body": "out"})
    await stored(mongo_db.messages, {"userId": ALICE, "id": "w2", "body": "in"})
    await stored(mongo_db.chats, {"userId": ALICE, "chatId": CHAT, "lastMessage.id": "w2", "name": "Ann"})


async def test_same_message_published_three_times_is_one_document(running, publisher, topology, mongo_db, events):
    env = events.received(ALICE, "dup-1", body="once")
    duplicates_before = metric("persister_events_duplicate_total")
    for _ in range(3):
        await publish_envelope(publisher, topology.events, env)

    async def all_three_handled():
        return metric("persister_events_duplicate_total") - duplicates_before >= 2

    await wait_until(all_three_handled, DEADLINE, what="the two duplicates to be handled")
    assert await mongo_db.messages.count_documents({"userId": ALICE}) == 1
    assert await mongo_db.chats.count_documents({"userId": ALICE}) == 1


async def test_queries_answer_only_that_users_data(running, publisher, rpc, topology, mongo_db, events, settings):
    for i in range(3):
        await publish_envelope(publisher, topology.events, events.received(ALICE, f"a{i}", ts=100 + i, body=f"alice {i}"))
    await publish_envelope(publisher, topology.events, events.received(BOB, "b0", ts=50, body="bob 0"))
    await stored(mongo_db.messages, {"userId": ALICE}, 3)
    await stored(mongo_db.messages, {"userId": BOB}, 1)

    reply = await rpc.request(topology.queries, envelope(ListMessages(chat_id=CHAT, limit=2), ALICE), timeout=10)
    assert reply.ok, reply
    assert [m["body"] for m in reply.data["items"]] == ["alice 2", "alice 1"]
    more = await rpc.request(
        topology.queries, envelope(ListMessages(chat_id=CHAT, before=reply.data["nextCursor"]), ALICE), timeout=10
    )
    assert [m["body"] for m in more.data["items"]] == ["alice 0"] and more.data["nextCursor"] is None

    bob = await rpc.request(topology.queries, envelope(ListMessages(chat_id=CHAT), BOB), timeout=10)
    assert [m["body"] for m in bob.data["items"]] == ["bob 0"]
    bob_chats = await rpc.request(topology.queries, envelope(ListChats(), BOB), timeout=10)
    assert [c["lastMessage"]["body"] for c in bob_chats.data["items"]] == ["bob 0"]

    bad = await rpc.request(topology.queries, envelope(ListMessages(chat_id=CHAT, before="garbage"), ALICE), timeout=10)
    assert (bad.ok, bad.error.code, bad.error.status) == (False, "invalid_cursor", 400)


async def test_malformed_events_are_dead_lettered(running, publisher, topology, mongo_db, events, amqp_channel):
    exchange = await amqp_channel.get_exchange(topology.events)
    await exchange.publish(aio_pika.Message(b"not json at all", content_type="application/json"), "user.alice.message.received")
    unknown = {**events.received(ALICE, "x").wire(), "type": "message.deleted"}
    await exchange.publish(aio_pika.Message(json.dumps(unknown).encode()), "user.alice.message.deleted")
    dlq_name = topology.dead_letter_queue(topology.persister_events)

    async def dead_lettered():
        queue = await amqp_channel.declare_queue(dlq_name, passive=True)
        return queue.declaration_result.message_count >= 2

    await wait_until(dead_lettered, DEADLINE, what="two malformed events in the DLQ")
    dlq = await amqp_channel.declare_queue(dlq_name, passive=True)
    reasons = {}
    for _ in range(2):
        message = await dlq.get(no_ack=True, timeout=5)
        reasons[message.body] = message.headers["x-fleet-dead-reason"]
        assert message.headers["x-fleet-dead-queue"] == topology.persister_events
        assert message.headers["x-fleet-dead-by"] == "persister"
    assert reasons[b"not json at all"].startswith("malformed: body is not JSON")
    assert "message.deleted" in reasons[json.dumps(unknown).encode()]
    # The consumer is still alive and storing.
    await publish_envelope(publisher, topology.events, events.received(ALICE, "after-bad"))
    await stored(mongo_db.messages, {"userId": ALICE, "id": "after-bad"})


async def test_ops_endpoints(running):
    transport = httpx.ASGITransport(app=running)
    async with httpx.AsyncClient(transport=transport, base_url="http://persister") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        metrics = (await http.get("/metrics")).text
        assert "persister_events_written_total" in metrics and "persister_events_duplicate_total" in metrics
        dlq = running.state.topology.dead_letter_queue(running.state.topology.persister_events)
        assert f'fleet_dead_letter_messages{{queue="{dlq}"}} 0.0' in metrics


async def test_event_is_not_acked_until_mongodb_took_it(topology, rabbitmq_url, publisher, tmp_path, events):
    """MongoDB goes down: the event stays in RabbitMQ (nacked, requeued), and lands once it is back."""
    mongo = EmbeddedMongo(storage=str(tmp_path / "db")).start()
    settings = make_settings(
        topology, rabbitmq_url, mongo.url, "outage", write_retry_timeout="1s", write_retry_backoff="100ms"
    )
    app = create_app(settings)
    check = AsyncMongoClient(mongo.url, serverSelectionTimeoutMS=2000)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://persister")
            mongo.stop()
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["failing"] == ["mongodb"]

            failures_before = metric("persister_write_failures_total")
            await publish_envelope(publisher, topology.events, events.received(ALICE, "during-outage"))

            async def write_failed():
                return metric("persister_write_failures_total") > failures_before

            await wait_until(write_failed, 30, what="a failed write attempt")
            mongo = EmbeddedMongo(port=mongo.port, storage=str(tmp_path / "db")).start()
            await stored(check.outage.messages, {"userId": ALICE, "id": "during-outage"})

            async def ready_again():
                return (await http.get("/readyz")).status_code == 200

            await wait_until(ready_again, DEADLINE, what="/readyz to recover")
            await http.aclose()
    finally:
        await check.close()
        mongo.stop()


async def test_public_events_are_numbered_published_and_replayed_per_user(
    running, publisher, rpc, topology, amqp_channel, events
):
    stream = await amqp_channel.get_exchange(topology.stream)
    seen = await amqp_channel.declare_queue(exclusive=True)
    await seen.bind(stream, "user.alice.#")
    first = events.received(ALICE, "s1")
    for env in (first, envelope(SessionStatusChanged(status="WORKING"), ALICE), events.ack(ALICE, "s1", 2)):
        await publish_envelope(publisher, topology.events, env)
        await publish_envelope(publisher, topology.events, events.received(BOB))
    await publish_envelope(publisher, topology.events, first)  # a redelivery: same seq, published again

    published: list[dict] = []

    async def four_published():
        while (message := await seen.get(no_ack=True, fail=False)) is not None:
            published.append(json.loads(message.body) | {"key": message.routing_key})
        return len(published) == 4

    await wait_until(four_published, DEADLINE, what="alice's 4 stream messages")
    # Numbered in the order they were stored (concurrent batches may store them either way) and
    # published in that order; the redelivery is published again with the number it had.
    numbered = [p for n, p in enumerate(published) if p["id"] not in {q["id"] for q in published[:n]}]
    assert [p["seq"] for p in numbered] == [1, 2, 3]
    assert {p["type"] for p in numbered} == {"message.received", "session.status_changed", "message.ack"}
    seq_of = {p["id"]: p["seq"] for p in numbered}
    assert [p["seq"] for p in published if p["id"] == first.id] == [seq_of[first.id]] * 2
    assert all(p["key"] == f"user.{ALICE}.{p['type']}" for p in published)

    reply = await rpc.request(topology.queries, envelope(ListEvents(after=1, limit=10), ALICE), timeout=10)
    assert reply.ok, reply
    assert [(e["seq"], e["type"]) for e in reply.data["items"]] == [(p["seq"], p["type"]) for p in numbered[1:]]
    assert reply.data["next"] == 3
    bob = await rpc.request(topology.queries, envelope(ListEvents(), BOB), timeout=10)
    assert [e["userId"] for e in bob.data["items"]] == [BOB] * 3 and bob.data["next"] == 3
    empty = await rpc.request(topology.queries, envelope(ListEvents(after=3), ALICE), timeout=10)
    assert empty.data == {"items": [], "next": 3, "last": 3}


async def test_a_burst_of_one_users_events_reaches_the_stream_in_seq_order(
    running, publisher, topology, amqp_channel, events
):
    """Many of a user's events at once are written in several concurrent batches: each batch's
    numbers are published before the next batch's, and a batch's in order (a consumer starting
    from the first one it sees must not meet a lower one after it)."""
    stream = await amqp_channel.get_exchange(topology.stream)
    seen = await amqp_channel.declare_queue(exclusive=True)
    await seen.bind(stream, "user.alice.#")
    burst = [events.received(ALICE, f"burst-{i}") for i in range(200)]
    await asyncio.gather(*(publish_envelope(publisher, topology.events, env) for env in burst))

    seqs: list[int] = []

    async def all_published():
        while (message := await seen.get(no_ack=True, fail=False)) is not None:
            seqs.append(json.loads(message.body)["seq"])
        return len(seqs) >= len(burst)

    await wait_until(all_published, DEADLINE, what="the burst on the stream")
    assert seqs == list(range(1, len(burst) + 1))
