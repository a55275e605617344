"""The broker entrypoints handed deliveries directly (no broker): what each answers, refuses, or hands back."""

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from faststream.exceptions import NackMessage, RejectMessage
from pymongo.errors import AutoReconnect

from fleet_shared.contracts import Envelope, utcnow
from fleet_shared.contracts.admin import AdminCountSessions
from fleet_shared.contracts.commands import GetSession, StartSession
from fleet_shared.contracts.events import SessionActive, SessionStatusReported
from fleet_shared.routing import admin_key, user_key
from session_orchestrator.entrypoints.ordering import UserSerializer
from session_orchestrator.entrypoints.subscribers import Subscribers, reply_deadline


@dataclass
class Raw:
    routing_key: str
    redelivered: bool = False
    headers: dict = field(default_factory=dict)


@dataclass
class Delivery:
    """What FastStream hands a subscriber (`whole_delivery`): the parts they read."""

    body: bytes
    raw_message: Raw
    reply_to: str | None = "amq.rabbitmq.reply-to"
    message_id: str = "m-1"


def delivery(env: Envelope | dict, routing_key: str | None = None, **kw) -> Delivery:
    body = env.wire() if isinstance(env, Envelope) else env
    key = routing_key or user_key(body["userId"], body["type"])
    return Delivery(json.dumps(body).encode(), Raw(key, **kw.pop("raw", {})), **kw)


@pytest.fixture
def subscribers(harness) -> Subscribers:
    return Subscribers(harness.orchestrator, UserSerializer(), harness.settings, clock=harness.clock)


async def test_a_command_is_answered_with_its_reply(harness, subscribers):
    response = await subscribers.on_command(delivery(harness.envelope(StartSession(), "alice")))

    assert json.loads(response.body)["ok"] and json.loads(response.body)["data"] == {"status": "STARTING"}


async def test_a_command_past_its_requesters_deadline_is_not_run(harness, subscribers):
    late = harness.envelope(StartSession(), "alice")
    harness.clock.advance(seconds=harness.settings.request_timeout.total_seconds())

    response = await subscribers.on_command(delivery(late))

    assert json.loads(response.body)["error"]["code"] == "timeout"
    assert harness.waha.calls == []  # nothing done in WAHA
    # Nobody waits for an upkeep command: it runs whatever its age.
    ran = await subscribers.on_command(delivery(late, reply_to=None))
    assert json.loads(ran.body)["ok"] and harness.waha.calls


async def test_a_replayed_command_is_read_by_its_envelope(harness, subscribers):
    env = harness.envelope(StartSession(), "alice")
    replayed = delivery(env, routing_key="wa.orchestrator.commands.0", raw={"headers": {"x-fleet-replays": 1}})
    response = await subscribers.on_command(replayed)
    assert json.loads(response.body)["ok"], response.body
    refused = await subscribers.on_command(delivery(env, routing_key="wa.orchestrator.commands.0"))
    assert json.loads(refused.body)["error"]["code"] == "invalid_message"  # not a replay: its key must name the user


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, key: (b"not json", key),
        lambda body, key: (json.dumps({**body, "userId": "bob"}).encode(), key),  # another user's envelope
        lambda body, key: (json.dumps({**body, "type": "session.stop"}).encode(), key),  # another type
        lambda body, key: (json.dumps({**body, "version": 9}).encode(), key),
    ],
)
async def test_a_delivery_that_is_not_what_its_key_says_is_answered_400_and_does_nothing(harness, subscribers, tamper):
    good = delivery(harness.envelope(StartSession(), "alice"))
    body, key = tamper(json.loads(good.body), good.raw_message.routing_key)

    response = await subscribers.on_command(Delivery(body, Raw(key)))

    assert json.loads(response.body)["error"]["code"] == "invalid_message" and json.loads(response.body)["error"]["status"] == 400
    assert harness.waha.calls == [] and harness.registry.docs == {}


async def test_a_bad_delivery_nobody_waits_for_is_rejected_to_the_dead_letters(harness, subscribers):
    with pytest.raises(RejectMessage):
        await subscribers.on_command(Delivery(b"{}", Raw("user.alice.session.start"), reply_to=None))
    with pytest.raises(RejectMessage):
        await subscribers.on_command(Delivery(b"{}", Raw("not-a-user-key"), reply_to=None))


async def test_a_status_report_is_applied_and_needs_no_answer(harness, subscribers):
    report = SessionStatusReported(status="WORKING", phone_number="1555", reported_at_ms=1_000, waha_event_id="evt-1")

    assert await subscribers.on_command(delivery(harness.envelope(report, "alice"), reply_to=None)) is None
    assert harness.registry.docs["alice"]["status"] == "WORKING"


async def test_a_report_that_cannot_be_stored_now_is_handed_back_after_a_backoff(harness, subscribers):
    harness.registry.fail_with = AutoReconnect("down")
    report = SessionStatusReported(status="WORKING", reported_at_ms=1_000, waha_event_id="evt-1")

    with pytest.raises(NackMessage):
        await subscribers.on_command(delivery(harness.envelope(report, "alice"), reply_to=None))


async def test_queries_take_user_and_admin_keys(harness, subscribers):
    mine = await subscribers.on_query(delivery(harness.envelope(GetSession(), "alice")))
    assert json.loads(mine.body)["data"]["userId"] == "alice"

    count = harness.envelope(AdminCountSessions(), "ops")
    fleet = await subscribers.on_query(delivery(count, routing_key=admin_key(AdminCountSessions.TYPE)))
    assert json.loads(fleet.body)["ok"] and json.loads(fleet.body)["data"]["count"] == 0
    wrong = await subscribers.on_query(delivery(count, routing_key=admin_key("sessions.list")))
    assert json.loads(wrong.body)["error"]["code"] == "invalid_message"


async def test_activity_moves_the_clock_and_other_types_on_its_queue_are_skipped(harness, subscribers):
    await harness.registry.touch("alice", harness.clock() - timedelta(hours=1))
    active = harness.envelope(SessionActive(message_id="m1"), "alice")

    await subscribers.on_activity(delivery(active, reply_to=None))
    assert harness.registry.docs["alice"]["lastActivity"] == harness.clock()

    other = harness.envelope(GetSession(), "alice")  # bound by an earlier version: acked, ignored
    assert await subscribers.on_activity(delivery(other, reply_to=None)) is None
    with pytest.raises(RejectMessage):
        await subscribers.on_activity(Delivery(b"[]", Raw("user.alice.session.active"), reply_to=None))


async def test_one_users_commands_run_one_at_a_time_in_order_and_others_do_not_wait(harness, subscribers):
    order: list[str] = []
    release = asyncio.Event()
    original = harness.waha.get_session

    async def slow_for_alice(name, *, deadline=None):
        if name == "wf_alice":
            await release.wait()
        order.append(name)
        return await original(name, deadline=deadline)

    harness.waha.get_session = slow_for_alice
    first = asyncio.create_task(subscribers.on_command(delivery(harness.envelope(StartSession(), "alice"))))
    second = asyncio.create_task(subscribers.on_command(delivery(harness.envelope(StartSession(), "alice"))))
    bob = await asyncio.wait_for(subscribers.on_command(delivery(harness.envelope(StartSession(), "bob"))), 2)

    assert json.loads(bob.body)["ok"] and order == ["wf_bob"]  # bob did not wait behind alice
    release.set()
    await asyncio.gather(first, second)
    assert harness.waha.calls_of("session.create") == ["wf_bob", "wf_alice"]  # alice's second found it made


def test_the_reply_deadline_leaves_the_margin_and_counts_the_time_the_request_waited():
    env = Envelope(id="x", type="session.start", version=1, occurred_at=utcnow() - timedelta(seconds=3), user_id="a", data={})

    deadline = reply_deadline(env, 100.0, timedelta(seconds=10), timedelta(seconds=1.5))

    assert 105.4 < deadline < 105.6  # 10 - 1.5 - 3 seconds from now
    assert reply_deadline(env, 100.0, timedelta(seconds=4), timedelta(seconds=1.5)) == 101.0  # never below the floor
