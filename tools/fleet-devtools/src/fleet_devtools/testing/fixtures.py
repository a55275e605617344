"""Real infrastructure for tests: the RabbitMQ at RABBITMQ_URL (and a silent one), a SecantusDB server, a fresh prefix."""

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from fleet_devtools.localdev import EmbeddedMongo
from fleet_shared.topology import Topology, declare_topology_at

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
TEST_PARTITIONS = 4


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return os.environ.get("RABBITMQ_URL", DEFAULT_RABBITMQ_URL)


@pytest.fixture
def silent_broker_url() -> Iterator[str]:
    """An AMQP URL whose "broker" takes TCP connections and never says a word, as a RabbitMQ that is
    stuck or half started does: a listening socket nobody accepts on (the kernel still completes
    the TCP handshakes)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}/"


@pytest.fixture(scope="session")
def mongodb_url():
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    server = EmbeddedMongo().start()
    yield server.url
    server.stop()


@pytest.fixture
async def mongo_db(mongodb_url):
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def topology(rabbitmq_url):
    """A topology under a prefix of its own, declared on the real broker, deleted afterwards."""
    topo = Topology(f"t{uuid.uuid4().hex[:10]}", partitions=TEST_PARTITIONS)
    await declare_topology_at(rabbitmq_url, topo)
    yield topo
    await delete_topology(rabbitmq_url, topo)


async def delete_topology(url: str, topo: Topology) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for q in topo.queues():
            await channel.queue_delete(q.name)
        for ex in topo.exchanges():
            await channel.exchange_delete(ex.name)
