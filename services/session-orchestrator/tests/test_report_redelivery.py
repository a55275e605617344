"""Save the state, then publish, then ack: a replica that died between saving a status and announcing
it leaves the report unacked; redelivered, the report announces the same change, with the same id."""

import asyncio
import json

import aio_pika
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import deterministic_id, utcnow
from fleet_shared.contracts.events import SessionStatusReported
from fleet_shared.topology import USER_ID_HEADER
from session_orchestrator.domain.statuses import StatusReport, decide_report

from .conftest import status_report_envelope

pytestmark = pytest.mark.integration

USER = "vera"
REPORTED_AT_MS = 1_800_000_000_000


async def test_a_report_redelivered_after_a_crash_before_its_announcement_announces_it(
    single_partition, waha, registry, rabbitmq_url, make_orchestrator
):
    topology = single_partition
    report = SessionStatusReported(status="WORKING", phone_number="15550001234", reported_at_ms=REPORTED_AT_MS,
                                   waha_event_id="evt_crash_1")
    env = status_report_envelope(USER, report)
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        announcements = await channel.declare_queue(exclusive=True, auto_delete=True)
        await announcements.bind(topology.events, f"user.{USER}.session.status_changed")
        events = await channel.get_exchange(topology.events, ensure=False)
        await events.publish(
            aio_pika.Message(json.dumps(env.wire()).encode(), message_id=env.id, headers={USER_ID_HEADER: USER},
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=f"user.{USER}.session.status_reported",
        )

        # The replica that died: it took the report and saved the new state, then was gone before
        # announcing it and acking (its channel closing hands the report back, marked redelivered).
        crashed = await connection.channel()
        partition = await crashed.declare_queue(topology.orchestrator_commands(0), passive=True)
        async with partition.iterator() as deliveries:  # the partition's single active consumer
            taken = await asyncio.wait_for(anext(deliveries), 10)
        previous = await registry.state(USER)
        decision = decide_report(previous, StatusReport(status="WORKING", reported_at_ms=REPORTED_AT_MS, phone_number="15550001234"))
        assert await registry.apply_report(USER, previous, decision, utcnow())
        assert taken.message_id == env.id
        await crashed.close()

        await make_orchestrator(topology, waha)  # the replica that takes over

        expected = deterministic_id(USER, "status", "WORKING", str(REPORTED_AT_MS))
        announced = await wait_until(lambda: announcements.get(no_ack=True, fail=False), timeout=15,
                                     what="session.status_changed announced after the redelivery")
    finally:
        await connection.close()
    body = json.loads(announced.body)
    assert (announced.message_id, body["id"], body["data"]["status"]) == (expected, expected, "WORKING")
    assert (await registry.state(USER)).status == "WORKING"
