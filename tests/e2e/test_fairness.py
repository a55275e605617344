"""Issue 22.1: one user cannot hurt another. Two users share the only orchestrator partition; one
floods sends, 200 at a time. The flood is refused beyond USER_MAX_PENDING with 429 and Retry-After,
nothing it sent is done after its client was told to give up, nothing is dead-lettered, and the
other user's sends are each answered within BOUND seconds meanwhile (today: 504s of up to 12 s).
"""

import asyncio
import time

import aio_pika
import httpx
import pytest

from fleet_shared.ids import session_name_for
from fleet_shared.topology import Topology

from ..conftest import auth, launched, stack_config
from ..helpers import connect, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

BOUND = 3.0  # seconds: the longest the quiet user's send may take while the other floods
FLOOD, AT_ONCE = 1000, 200


@pytest.fixture(scope="module")
def one_partition(rabbitmq_url, tmp_path_factory):
    config = stack_config(rabbitmq_url, tmp_path_factory.mktemp("fairness-logs"), tag="fair",
                          env={"ORCHESTRATOR_PARTITIONS": "1"})
    with launched(config, rabbitmq_url) as system:
        yield system


async def test_a_flooding_user_is_refused_and_never_delays_the_other_beyond_the_bound(one_partition, rabbitmq_url):
    stack = one_partition
    loud, quiet = unique_user("loud"), unique_user("quiet")
    chat = {"chatId": "4915100000042@c.us"}
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30,
                                 limits=httpx.Limits(max_connections=AT_ONCE + 10)) as gateway, \
            httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as waha:
        await asyncio.gather(connect(gateway, waha, loud, "15556000001"), connect(gateway, waha, quiet, "15556000002"))

        statuses: list[int] = []
        retry_after: set[str | None] = set()
        gate = asyncio.Semaphore(AT_ONCE)

        async def one_of_the_flood(n: int) -> None:
            async with gate:
                r = await gateway.post("/api/v1/waha/messages", headers=auth(loud), json={**chat, "text": f"flood {n}"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after.add(r.headers.get("retry-after"))

        flood = asyncio.gather(*(one_of_the_flood(n) for n in range(FLOOD)))
        quiet_took: list[float] = []
        # A client of its own, as another user's would be (the flood's pool is full of the flood).
        async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as quiet_client:
            for n in range(10):
                started = time.monotonic()
                r = await quiet_client.post("/api/v1/waha/messages", headers=auth(quiet), json={**chat, "text": f"quiet {n}"})
                quiet_took.append(time.monotonic() - started)
                assert r.status_code == 201, r.text
        await flood

        assert max(quiet_took) < BOUND, quiet_took
        assert set(statuses) <= {201, 429}, sorted(set(statuses))  # no 504: nothing left to run after its client gave up
        assert statuses.count(429) > 0 and retry_after == {"1"}
        loud_sent = (await waha.get(f"/_emulator/sessions/{session_name_for(loud)}/sent")).json()
        assert len(loud_sent) == statuses.count(201)  # exactly what was answered 201, nothing more

    topology = Topology(stack.config.env["BROKER_PREFIX"], 1)
    async with await aio_pika.connect(rabbitmq_url) as connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(topology.dead_letter_queue(topology.orchestrator_commands(0)), passive=True)
        assert dlq.declaration_result.message_count == 0
