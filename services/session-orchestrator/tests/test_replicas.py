"""Issue 3, points 8 and 9, with real processes: two orchestrator replicas on one broker and database.

RabbitMQ gives each partition queue (quorum, single active consumer) to one live replica; `kill -9`
of that replica hands its partitions to the other, which gets the commands the dead one held
(unacked, so redelivered) and answers them. SIGTERM drains what a replica holds, answers it, and
leaves WAHA's sessions running for whoever comes next.
"""

import asyncio
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fleet_devtools.localdev import free_port, wait_until
from fleet_shared.broker import RpcClient
from fleet_shared.contracts import envelope
from fleet_shared.contracts.commands import GetQr, StartSession
from fleet_shared.ids import session_name_for
from local_launcher.processes import Child, base_environment, python_module

from .conftest import HMAC_KEY, WAHA_KEY

pytestmark = pytest.mark.integration

SLOW = 0.7  # seconds each WAHA call about a slow user takes
RPC_TIMEOUT = 40.0


class Replica:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.child = Child(
            name, python_module("session_orchestrator"), self.port, env={**env, "PORT": str(self.port)},
            log_path=log_dir / f"{name}.log",
        )
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    async def start(self) -> "Replica":
        await asyncio.to_thread(self.child.start, base_environment({}))

        async def ready() -> bool:
            return (await self.http.get("/readyz")).status_code == 200

        await wait_until(ready, 30, what=f"{self.child.name} ready")
        return self

    async def handled(self, message_type: str) -> float:
        """Messages of `message_type` this replica answered (its /metrics)."""
        text = (await self.http.get("/metrics")).text
        pattern = re.compile(r"^orchestrator_messages_total\{([^}]*)\} (\S+)$")
        wanted = f'type="{message_type}"'
        return sum(
            float(m.group(2)) for line in text.splitlines() if (m := pattern.match(line)) and wanted in m.group(1)
        )

    def kill(self) -> None:
        self.child.kill()  # SIGKILL: no goodbye to anyone

    async def terminate(self) -> int:
        """SIGTERM, and the exit code once the process is gone."""
        process = self.child.process
        process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(process.wait, 30)

    async def close(self) -> None:
        await asyncio.to_thread(self.child.kill)
        await self.http.aclose()


@pytest.fixture
async def start_replica(topology, rabbitmq_url, mongodb_url, mongo_db, webhook_sink, tmp_path) -> AsyncIterator:
    started: list[Replica] = []

    async def start(waha, name: str) -> Replica:
        env = {
            "ENVIRONMENT": "dev",
            "RABBITMQ_URL": rabbitmq_url,
            "BROKER_PREFIX": topology.prefix,
            "ORCHESTRATOR_PARTITIONS": str(topology.partitions),
            "MONGODB_URL": mongodb_url,
            "MONGODB_DATABASE": mongo_db.name,
            "WAHA_URL": waha.url,
            "WAHA_API_KEY": WAHA_KEY,
            "WEBHOOK_URL": webhook_sink.url,
            "WEBHOOK_HMAC_KEY": HMAC_KEY,
            "REQUEST_TIMEOUT": "30s",
            "QR_POLL_INTERVAL": "50ms",
            "LOG_LEVEL": "INFO",
        }
        replica = Replica(name, env, tmp_path)
        started.append(replica)
        return await replica.start()

    yield start
    for replica in started:
        await replica.close()


@pytest.fixture
async def client(rabbitmq_url, topology) -> AsyncIterator:
    """A requester on the broker, as the gateway is."""
    rpc = RpcClient(rabbitmq_url, topology, "replica-tests")
    await rpc.connect()

    async def ask(payload, user_id: str):
        env = envelope(payload, user_id, session=session_name_for(user_id), correlation_id=str(uuid.uuid4()))
        return await rpc.request(topology.commands, env, RPC_TIMEOUT)

    yield ask
    await rpc.close()


async def _creates(waha, user_id: str) -> int:
    return len([c for c in await waha.calls(method="POST", path="/api/sessions") if c["session"] == session_name_for(user_id)])


async def test_kill_9_of_the_active_replica_moves_its_users_to_the_other(make_waha, start_replica, client):
    slow_users = [f"slow{i}" for i in range(4)]
    waha = await make_waha({session_name_for(u) for u in slow_users}, SLOW)
    first = await start_replica(waha, "replica-a")
    second = await start_replica(waha, "replica-b")

    # The first replica to consume a partition drives it; the other waits as a hot standby.
    assert (await client(GetQr(), "warmup")).ok
    assert (await first.handled("session.qr"), await second.handled("session.qr")) == (1, 0)

    # The first replica takes the slow users' QR requests, creates their sessions and is waiting
    # for their QR codes (a slow WAHA call each) when it is killed.
    asked = [asyncio.create_task(client(GetQr(), user)) for user in slow_users]

    async def all_created_and_in_a_call() -> bool:
        arrived = waha.slow.arrived
        return all(arrived.get(session_name_for(u), 0) >= 2 for u in slow_users)

    await wait_until(all_created_and_in_a_call, 20, what="every slow session created and waited on")
    assert [await _creates(waha, u) for u in slow_users] == [1] * len(slow_users)
    first.kill()
    killed = time.monotonic()

    # A command sent after the kill is answered by the survivor within seconds ...
    fresh = await client(StartSession(), "newcomer")
    assert fresh.ok, fresh
    assert time.monotonic() - killed < 5
    # ... and so is every command the dead replica held: none lost, none started twice.
    replies = await asyncio.gather(*asked)
    assert all(r.ok and r.data["status"] == "SCAN_QR_CODE" and r.data["qr"] for r in replies), replies
    assert time.monotonic() - killed < 20
    assert [await _creates(waha, u) for u in slow_users] == [1] * len(slow_users)
    sessions = {s["name"] for s in (await waha.http.get("/api/sessions", params={"all": "true"})).json()}
    assert sessions == {session_name_for(u) for u in ["warmup", "newcomer", *slow_users]}
    assert await second.handled("session.qr") == len(slow_users)
    assert await second.handled("session.start") == 1


async def test_sigterm_drains_in_flight_commands_and_leaves_sessions_running(
    make_waha, start_replica, client, registry
):
    waha = await make_waha({"wf_slowpoke"}, SLOW)
    first = await start_replica(waha, "replica-a")
    assert (await client(GetQr(), "zoe")).ok
    await waha.scan("wf_zoe", "15550002626")

    in_flight = asyncio.create_task(client(StartSession(), "slowpoke"))
    await wait_until(lambda: _arrived(waha, "wf_slowpoke"), 10, what="slowpoke's first WAHA call")
    terminated = asyncio.create_task(first.terminate())
    # Sent while the replica shuts down: handled before it stops taking commands, or left in its
    # queue for the next replica; never lost.
    late = asyncio.create_task(client(StartSession(), "latecomer"))

    reply = await in_flight  # answered although the replica was told to stop
    assert reply.ok and reply.data["status"] == "STARTING", reply
    # uvicorn re-raises the signal once its graceful shutdown is done
    assert await terminated in (0, -signal.SIGTERM)
    # WAHA's sessions keep running: nobody stopped or logged anything out.
    assert [c for c in await waha.calls(method="POST") if c["path"].endswith(("/stop", "/logout"))] == []
    assert (await waha.session("wf_zoe"))["status"] == "WORKING"

    # The next orchestrator answers whatever was left in the queue, and adopts the running sessions.
    await start_replica(waha, "replica-b")
    assert (await late).ok

    async def adopted() -> bool:
        doc = await registry.get("zoe")
        return bool(doc) and doc["status"] == "WORKING" and doc["phoneNumber"] == "15550002626"

    await wait_until(adopted, 15, what="zoe's WORKING session adopted")


async def _arrived(waha, name: str) -> bool:
    return waha.slow.arrived.get(name, 0) > 0
