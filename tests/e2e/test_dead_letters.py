"""2: a message that can never be handled goes to a dead-letter queue with its reason, its depth is a
metric, and the documented command (`python -m fleet_devtools.dlq`, `make dlq-replay`) replays it."""

import json
import os
import subprocess
import sys

import aio_pika
import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import deterministic_id, envelope
from fleet_shared.contracts.commands import StartSession
from fleet_shared.contracts.events import MediaAvailable, MessageReceived, SessionActive
from fleet_shared.ids import session_name_for

from ..conftest import PARTITIONS
from ..helpers import metric, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def dlq_command(stack, *args: str) -> str:
    """The operators' command, as a process of its own, configured like the services."""
    env = {**os.environ, "RABBITMQ_URL": stack.env["RABBITMQ_URL"], "BROKER_PREFIX": stack.env["BROKER_PREFIX"],
           "ORCHESTRATOR_PARTITIONS": str(PARTITIONS)}
    done = subprocess.run([sys.executable, "-m", "fleet_devtools.dlq", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def publish(rabbitmq_url: str, exchange: str, routing_key: str, body: bytes, message_id: str) -> None:
    async with await aio_pika.connect(rabbitmq_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
        await target.publish(aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                             routing_key=routing_key)


async def test_poison_is_dead_lettered_with_its_reason_counted_and_replayable(stack, topology, rabbitmq_url, db):
    user = unique_user("poison")
    dlq = topology.dead_letter_queue(topology.persister_events)
    async with httpx.AsyncClient(base_url=stack.url("persister")) as persister, \
            httpx.AsyncClient(base_url=stack.url("session-orchestrator")) as orchestrator:
        before = await metric(persister, "fleet_dead_letter_messages", queue=dlq)
        # An envelope of a type nobody knows, on a routing key the persister consumes.
        poison = {"id": f"poison-{user}", "type": "message.deleted", "version": 1, "userId": user, "data": {}}
        await publish(rabbitmq_url, topology.events, f"user.{user}.message.deleted", json.dumps(poison).encode(), poison["id"])

        async def counted() -> bool:
            return await metric(persister, "fleet_dead_letter_messages", queue=dlq) == before + 1

        await wait_until(counted, timeout=15, what="the poison counted in the DLQ depth")
        shown = [json.loads(line) for line in dlq_command(stack, "show", "persister.events", "--limit", "1000").splitlines()]
        [letter] = [s for s in shown if s["messageId"] == poison["id"]]
        assert letter["reason"].startswith("malformed: not an event the persister stores: 'message.deleted'")
        assert letter["queue"] == topology.persister_events

        # The orchestrator exposes the depth of its own dead-letter queues the same way.
        text = (await orchestrator.get("/metrics")).text
        assert f'fleet_dead_letter_messages{{queue="{topology.dead_letter_queue(topology.orchestrator_commands(0))}"}}' in text

        # Replayed, the poison is refused again and goes back to the DLQ: no loop, nothing lost.
        assert "replayed" in dlq_command(stack, "replay", "persister.events")
        await wait_until(counted, timeout=15, what="the replayed poison back in the DLQ")
        shown = [json.loads(line) for line in dlq_command(stack, "show", "persister.events", "--limit", "1000").splitlines()]
        assert [s["messageId"] for s in shown].count(poison["id"]) == 1


async def test_a_dead_letter_that_can_be_handled_now_is_stored_after_a_replay(stack, topology, rabbitmq_url, db):
    """What a long MongoDB outage leaves behind (deliveries past the delivery limit) is stored once replayed."""
    user = unique_user("later")
    data = MessageReceived(id=f"false_4915900000001@c.us_{user.upper()}", chat_id="4915900000001@c.us", from_me=False,
                           from_="4915900000001@c.us", body="stored after all", timestamp=1_700_000_000)
    env = envelope(data, user, id=deterministic_id(user, "message", data.id))
    dlq = topology.dead_letter_queue(topology.persister_events)
    await publish(rabbitmq_url, "", dlq, json.dumps(env.wire()).encode(), env.id)  # as RabbitMQ's DLX left it

    dlq_command(stack, "replay", dlq)

    async def stored() -> bool:
        return await db.messages.count_documents({"userId": user, "body": "stored after all"}) == 1

    await wait_until(stored, timeout=15, what="the replayed event stored")


async def test_every_dead_letter_queue_the_tool_lists_replays_into_a_consumer_that_takes_it(stack, topology, rabbitmq_url, waha):
    """The orchestrator's queues too: a replay arrives on the queue's own name, not a user key, and
    is handled like the original (issue 22.1: they were all dead-lettered again)."""
    listed = dlq_command(stack, "list")
    partitions = [topology.dead_letter_queue(q) for q in topology.orchestrator_command_queues]
    assert all(q in listed for q in [*partitions, topology.dead_letter_queue(topology.orchestrator_activity),
                                     topology.dead_letter_queue(topology.orchestrator_media)])
    users = [unique_user(f"replay{k}") for k in range(len(partitions))]
    for dlq, user in zip(partitions, users, strict=True):
        env = envelope(StartSession(), user, session=session_name_for(user))
        await publish(rabbitmq_url, "", dlq, json.dumps(env.wire()).encode(), env.id)
        dlq_command(stack, "replay", dlq)

    async def all_created() -> bool:
        found = [(await waha.get(f"/_emulator/sessions/{session_name_for(u)}")).status_code for u in users]
        return found == [200] * len(users)

    await wait_until(all_created, timeout=20, what="every replayed session.start done in WAHA")

    async with httpx.AsyncClient(base_url=stack.url("session-orchestrator")) as orchestrator:
        activity_before = await metric(orchestrator, "orchestrator_activity_events_total")
        failed_before = await metric(orchestrator, "orchestrator_media_copies_total", status="failed")
        active = envelope(SessionActive(message_id=f"false_4915900000002@c.us_{users[0].upper()}"), users[0])
        await publish(rabbitmq_url, "", topology.dead_letter_queue(topology.orchestrator_activity),
                      json.dumps(active.wire()).encode(), active.id)
        dlq_command(stack, "replay", topology.dead_letter_queue(topology.orchestrator_activity))
        gone = envelope(MediaAvailable(message_id=f"false_4915900000002@c.us_{users[0].upper()}", chat_id="4915900000002@c.us",
                                       kind="image", url=f"{stack.waha_url}/api/files/{session_name_for(users[0])}/gone.jpg"),
                        users[0])
        await publish(rabbitmq_url, "", topology.dead_letter_queue(topology.orchestrator_media),
                      json.dumps(gone.wire()).encode(), gone.id)
        dlq_command(stack, "replay", topology.dead_letter_queue(topology.orchestrator_media))

        async def both_handled() -> bool:
            return (await metric(orchestrator, "orchestrator_activity_events_total") == activity_before + 1
                    and await metric(orchestrator, "orchestrator_media_copies_total", status="failed") == failed_before + 1)

        await wait_until(both_handled, timeout=20, what="the replayed activity report and media copy handled")
    async with await aio_pika.connect(rabbitmq_url) as connection:
        channel = await connection.channel()
        for dlq in [*partitions, topology.dead_letter_queue(topology.orchestrator_activity)]:
            assert (await channel.declare_queue(dlq, passive=True)).declaration_result.message_count == 0, dlq
