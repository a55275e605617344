"""Dead-lettering with a reason, the operators' DLQ tool and the depth gauge, on the real broker."""

import json
import math

import aio_pika
import pytest
from prometheus_client import Gauge

from fleet_devtools.dlq import depths, peek, replay, resolve, run
from fleet_devtools.localdev import wait_until
from fleet_shared.broker import make_broker
from fleet_shared.deadletter import dead_letter
from fleet_shared.queue_depth import QueueDepths
from fleet_shared.settings import FleetSettings

pytestmark = pytest.mark.integration

TEST_GAUGE = Gauge("fleet_test_queue_messages", "queue depth, for the tests", ["queue"])


@pytest.fixture
async def channel(rabbitmq_url):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


@pytest.fixture
async def broker(rabbitmq_url, topology):
    broker = make_broker(FleetSettings(rabbitmq_url=rabbitmq_url, broker_prefix=topology.prefix), "dlq-test")
    await broker.connect()
    yield broker
    await broker.stop()


async def put(channel, queue: str, body: dict, message_id: str) -> None:
    message = aio_pika.Message(json.dumps(body).encode(), message_id=message_id, headers={"x-user-id": "alice"})
    await channel.default_exchange.publish(message, routing_key=queue)


async def count(channel, queue: str) -> int:
    return (await channel.declare_queue(queue, passive=True)).declaration_result.message_count


async def test_dead_letter_with_a_reason_then_replay_it(channel, broker, topology, rabbitmq_url):
    work = topology.persister_events
    dlq = topology.dead_letter_queue(work)
    await put(channel, work, {"n": 1}, "m-1")
    queue = await channel.declare_queue(work, passive=True)
    delivery = await queue.get(timeout=5)

    await dead_letter(broker, topology, work, delivery, "malformed: no type", "persister")
    await delivery.ack()

    assert (await count(channel, work), await count(channel, dlq)) == (0, 1)
    [letter] = await peek(rabbitmq_url, dlq, limit=10)
    assert (letter.message_id, letter.reason, letter.queue) == ("m-1", "malformed: no type", work)
    assert letter.summary()["body"] == {"n": 1}
    await wait_until(lambda: count(channel, dlq), what="the peeked message back in the DLQ")  # peeking leaves it there

    assert await replay(rabbitmq_url, dlq) == 1
    assert (await count(channel, work), await count(channel, dlq)) == (1, 0)
    back = await queue.get(timeout=5)
    assert back.message_id == "m-1" and json.loads(back.body) == {"n": 1}
    assert back.headers["x-user-id"] == "alice" and back.headers["x-fleet-replays"] == 1
    assert "x-fleet-dead-reason" not in back.headers
    await back.ack()


async def test_a_broker_dead_letter_shows_rabbitmqs_reason_and_replay_is_bounded(channel, topology, rabbitmq_url):
    work = topology.persister_events
    dlq = topology.dead_letter_queue(work)
    for i in range(3):
        await put(channel, work, {"n": i}, f"r-{i}")
    queue = await channel.declare_queue(work, passive=True)
    for _ in range(3):
        await (await queue.get(timeout=5)).reject(requeue=False)  # RabbitMQ's DLX takes them

    letters = await peek(rabbitmq_url, dlq, limit=10)
    assert [letter.message_id for letter in letters] == ["r-0", "r-1", "r-2"]
    assert letters[0].reason.startswith("rejected by RabbitMQ")

    assert await replay(rabbitmq_url, dlq, limit=2) == 2
    assert (await count(channel, work), await count(channel, dlq)) == (2, 1)


async def test_names_resolve_to_dead_letter_queues(topology):
    dlq = topology.dead_letter_queue(topology.persister_events)
    assert dlq in topology.dead_letter_queues()
    for name in (dlq, topology.persister_events, "persister.events", "persister.events.dlq"):
        assert resolve(topology, name) == dlq
    with pytest.raises(ValueError):
        resolve(topology, "nothing.here")


async def test_the_command_lists_shows_and_replays(channel, topology, rabbitmq_url, capsys):
    settings = FleetSettings(rabbitmq_url=rabbitmq_url, broker_prefix=topology.prefix, orchestrator_partitions=topology.partitions)
    work = topology.persister_events
    await put(channel, work, {"n": 1}, "c-1")
    await (await (await channel.declare_queue(work, passive=True)).get(timeout=5)).reject(requeue=False)

    assert await run(["list"], settings) == 0
    listing = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert listing[f"{work}.dlq"] == "1" and len(listing) == len(topology.dead_letter_queues())
    assert await run(["show", "persister.events"], settings) == 0
    assert json.loads(capsys.readouterr().out)["messageId"] == "c-1"
    assert await run(["replay", "persister.events"], settings) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    assert await run(["replay", "nothing.here"], settings) == 2
    assert await count(channel, work) == 1


async def test_depth_gauge_reads_queues_and_reports_missing_ones_as_nan(channel, topology, rabbitmq_url):
    dlq = topology.dead_letter_queue(topology.persister_events)
    await put(channel, dlq, {"n": 1}, "d-1")
    gauge = QueueDepths(rabbitmq_url, "test", TEST_GAUGE, [dlq, "no.such.queue", topology.ingest_parked])
    try:
        await gauge.refresh()
        assert TEST_GAUGE.labels(dlq)._value.get() == 1
        assert math.isnan(TEST_GAUGE.labels("no.such.queue")._value.get())
        assert TEST_GAUGE.labels(topology.ingest_parked)._value.get() == 0
        assert await depths(rabbitmq_url, [dlq, "no.such.queue"]) == {dlq: 1, "no.such.queue": None}
    finally:
        await gauge.close()


async def test_depth_gauge_is_nan_while_the_broker_is_away(topology):
    gauge = QueueDepths("amqp://guest:guest@127.0.0.1:1/", "test", TEST_GAUGE, ["away"])
    await gauge.refresh()
    assert math.isnan(TEST_GAUGE.labels("away")._value.get())
