"""Admin routing keys, the admin contracts, and where the topology sends them (on the real broker)."""

import json

import aio_pika
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import envelope, parse_envelope
from fleet_shared.contracts.admin import AdminCountSessions, AdminGetSession, AdminListSessions, IdleStopSession
from fleet_shared.contracts.events import MessageAck, MessageReceived, SessionActive
from fleet_shared.routing import admin_key, parse_admin_key
from fleet_shared.topology import USER_ID_HEADER


def test_admin_key_round_trip():
    assert admin_key("sessions.list") == "system.admin.sessions.list"
    assert parse_admin_key("system.admin.sessions.count") == "sessions.count"


@pytest.mark.parametrize(
    "key", ["system.admin.sessions", "system.admin.sessions.list.x", "user.alice.session.get", "system.admin.Sessions.list"]
)
def test_malformed_admin_keys_are_refused(key):
    with pytest.raises(ValueError):
        parse_admin_key(key)


def test_admin_envelopes_parse():
    env = parse_envelope(envelope(AdminListSessions(status="WORKING", limit=5), "ops").wire())
    assert env.data == AdminListSessions(status="WORKING", limit=5)
    assert parse_envelope(envelope(IdleStopSession(), "alice").wire()).type == "session.idle_stop"
    with pytest.raises(ValueError):
        AdminListSessions(limit=0)


@pytest.mark.integration
async def test_admin_queries_and_message_activity_reach_the_orchestrator(rabbitmq_url, topology):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queries = await channel.get_exchange(topology.queries)
        events = await channel.get_exchange(topology.events)
        for payload, key in (
            (AdminGetSession(), "user.alice.session.admin_get"),
            (AdminListSessions(), admin_key(AdminListSessions.TYPE)),
            (AdminCountSessions(), admin_key(AdminCountSessions.TYPE)),
        ):
            body = json.dumps(envelope(payload, "alice").wire()).encode()
            await queries.publish(aio_pika.Message(body, headers={USER_ID_HEADER: "alice"}), routing_key=key)
        received = MessageReceived(id="m1", chat_id="1@c.us", from_me=False, timestamp=1)
        ack = MessageAck(id="m1", chat_id="1@c.us", ack=3)
        active = SessionActive(message_id="m1")
        for payload in (received, ack, active):
            body = json.dumps(envelope(payload, "alice").wire()).encode()
            await events.publish(aio_pika.Message(body), routing_key=f"user.alice.{payload.TYPE}")

        async def depth(name: str) -> int:
            queue = await channel.declare_queue(name, passive=True)
            return queue.declaration_result.message_count

        await wait_until(lambda: _equals(depth(topology.orchestrator_queries), 3), 5, what="3 admin queries queued")
        # Activity gets webhook-ingest's reports of the user's messages, not the message events themselves.
        await wait_until(lambda: _equals(depth(topology.orchestrator_activity), 1), 5, what="1 activity event queued")
        queued = await (await channel.get_queue(topology.orchestrator_activity)).get(no_ack=True)
        assert queued.routing_key == "user.alice.session.active"


async def _equals(value, expected: int) -> bool:
    return await value == expected
