"""The gateways' status read model on the real broker: two gateways (apps with a broker connection
each) and a stand-in orchestrator whose registry changes as WAHA's reports come (`change`: written,
then `session.status_changed` published with confirm, as the orchestrator does). No read after a
change was published shows the old status; the gateway that answered a session command shows the
status its reply gave until the registry has a newer word."""

import asyncio
import json

import aio_pika
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import Reply, envelope
from fleet_shared.contracts.commands import HistoryImportView, SessionView
from fleet_shared.contracts.events import SessionStatusChanged
from fleet_shared.ids import session_name_for
from fleet_shared.routing import user_key
from gateway.status_cache import StatusReadModel

pytestmark = pytest.mark.integration

STATUS = "/api/v1/waha/status"


class Orchestrator:
    """The registry's statuses; a change is published (confirmed) before the command is answered."""

    def __init__(self, responder, channel: aio_pika.abc.AbstractChannel, events: str) -> None:
        self.statuses: dict[str, str] = {}
        self.imports: dict[str, HistoryImportView] = {}
        self.channel = channel
        self.events = events
        responder.handlers["session.get"] = self.get
        responder.handlers["session.stop"] = self.command("STOPPED")
        responder.handlers["session.start"] = self.command("STARTING")

    async def get(self, env: dict) -> Reply:
        user = env["userId"]
        status = self.statuses.get(user, "STOPPED")
        return Reply.success(SessionView(user_id=user, session=session_name_for(user), status=status,
                                         history_import=self.imports.get(user, HistoryImportView())))

    def command(self, status: str):
        """WAHA's answer to the command; the registry changes only with WAHA's webhook, later."""

        async def handle(env: dict) -> Reply:
            return Reply.success({"status": status})

        return handle

    async def change(self, user: str, status: str) -> None:
        previous = self.statuses.get(user, "STOPPED")
        self.statuses[user] = status
        event = envelope(SessionStatusChanged(status=status, previous_status=previous), user)
        await self.publish(event)

    async def publish(self, event) -> None:
        exchange = await self.channel.get_exchange(self.events, ensure=False)
        await exchange.publish(aio_pika.Message(json.dumps(event.wire()).encode(), message_id=event.id),
                               routing_key=user_key(event.user_id, event.type))


@pytest.fixture
async def orchestrator(responder, topology, rabbitmq_url):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        yield Orchestrator(responder, channel, topology.events)


@pytest.fixture
async def two_gateways(gateway_factory):
    async with gateway_factory() as a, gateway_factory() as b:
        for gateway in (a, b):
            # The read model subscribes in the background: wait until it keeps what it reads.
            await wait_until(serving(gateway), timeout=15, what="the read model subscribed")
        yield a, b


def read_model(gateway) -> StatusReadModel:
    return gateway.app_state.bus.statuses


def serving(gateway):
    async def check() -> bool:
        return read_model(gateway).serving

    return check


def asked(responder, user: str) -> int:
    return sum(1 for s in responder.of_type("session.get") if s.envelope["userId"] == user)


async def status_of(gateway, tokens, user: str) -> str:
    response = await gateway.get(STATUS, headers=tokens.auth(user))
    assert response.status_code == 200, response.text
    return response.json()["status"]


def held_answers(orchestrator, responder) -> asyncio.Event:
    """From now on `session.get` reads the registry when asked, and answers once the event is set."""
    release = asyncio.Event()

    async def held(env: dict) -> Reply:
        answer = await orchestrator.get(env)
        await release.wait()
        return answer

    responder.handlers["session.get"] = held
    return release


async def until_asked(responder, user: str, times: int, what: str) -> None:
    async def done() -> bool:
        return asked(responder, user) == times

    await wait_until(done, timeout=5, what=what)


async def test_a_status_read_again_is_answered_without_asking_the_orchestrator(two_gateways, orchestrator,
                                                                               responder, tokens):
    a, b = two_gateways
    orchestrator.statuses["alice"] = "WORKING"
    assert [await status_of(g, tokens, "alice") for g in (a, b, a, b, a)] == ["WORKING"] * 5
    assert asked(responder, "alice") == 2  # once per gateway
    body = (await a.get(STATUS, headers=tokens.auth("alice"))).json()
    assert body == {"userId": "alice", "session": "wf_alice", "status": "WORKING", "phoneNumber": None,
                    "lastError": None, "lastActivity": None, "updatedAt": None,
                    "historyImport": {"state": "idle", "chats": 0, "messages": 0, "error": None, "startedAt": None,
                                      "finishedAt": None}}


async def test_no_gateway_shows_the_old_status_right_after_a_change_was_published(two_gateways, orchestrator, tokens):
    a, b = two_gateways
    statuses = ["WORKING", "STOPPED"] * 10
    for status in statuses:
        await status_of(a, tokens, "alice")
        await status_of(b, tokens, "alice")  # both keep the current status
        await orchestrator.change("alice", status)  # confirmed: whoever hears of it now must read it
        assert (await status_of(b, tokens, "alice"), await status_of(a, tokens, "alice")) == (status, status)


async def test_the_gateway_that_answered_a_command_shows_its_status_until_the_registry_has_a_newer_one(
    two_gateways, orchestrator, responder, tokens
):
    a, b = two_gateways
    orchestrator.statuses.update(alice="WORKING", bob="WORKING")
    for gateway in (a, b):
        assert await status_of(gateway, tokens, "alice") == "WORKING"
        assert await status_of(gateway, tokens, "bob") == "WORKING"
    bob_asked = asked(responder, "bob")

    stop = await a.post("/api/v1/waha/session/stop", headers=tokens.auth("alice"))
    assert stop.status_code == 202 and stop.json() == {"status": "STOPPED"}
    assert await status_of(a, tokens, "alice") == "STOPPED"  # the registry still says WORKING
    assert await status_of(b, tokens, "alice") == "WORKING"  # what the registry says, as without a read model
    await orchestrator.change("alice", "STOPPED")  # WAHA's webhook applied
    assert (await status_of(b, tokens, "alice"), await status_of(a, tokens, "alice")) == ("STOPPED", "STOPPED")

    start = await b.post("/api/v1/waha/session/start", headers=tokens.auth("alice"))
    assert start.status_code == 202 and start.json() == {"status": "STARTING"}
    assert await status_of(b, tokens, "alice") == "STARTING"
    await orchestrator.change("alice", "STARTING")
    await orchestrator.change("alice", "SCAN_QR_CODE")  # newer than the reply: the registry's word again
    assert (await status_of(a, tokens, "alice"), await status_of(b, tokens, "alice")) == ("SCAN_QR_CODE",) * 2
    # Another user's status is still answered from what the gateways kept.
    assert (await status_of(a, tokens, "bob"), await status_of(b, tokens, "bob")) == ("WORKING", "WORKING")
    assert asked(responder, "bob") == bob_asked


async def test_an_answer_asked_for_before_a_change_is_not_kept(two_gateways, orchestrator, responder, tokens):
    """The orchestrator read the old status, then the change's event came before its answer did."""
    a, _ = two_gateways
    orchestrator.statuses["alice"] = "WORKING"
    release = held_answers(orchestrator, responder)
    reading = asyncio.create_task(status_of(a, tokens, "alice"))
    await until_asked(responder, "alice", 1, "the read asked")
    await orchestrator.change("alice", "STOPPED")
    await read_model(a)._subscription.caught_up()  # the event handled by this gateway
    release.set()
    assert await reading == "WORKING"  # an answer from before the change, given while it was made
    responder.handlers["session.get"] = orchestrator.get
    assert await status_of(a, tokens, "alice") == "STOPPED"
    assert asked(responder, "alice") == 2


async def test_a_status_read_often_is_asked_again_before_it_expires_without_a_read_waiting_for_it(
    gateway_factory, orchestrator, responder, tokens
):
    async with gateway_factory(status_cache_ttl=2) as gateway:
        await wait_until(serving(gateway), timeout=15, what="the read model subscribed")
        orchestrator.statuses["alice"] = "WORKING"
        assert await status_of(gateway, tokens, "alice") == "WORKING"
        first = read_model(gateway)._entries["alice"]
        release = held_answers(orchestrator, responder)

        async def asked_again() -> bool:
            # Answered from what was kept while the orchestrator holds the new answer back.
            assert await asyncio.wait_for(status_of(gateway, tokens, "alice"), 0.5) == "WORKING"
            return asked(responder, "alice") == 2

        await wait_until(asked_again, timeout=5, what="the kept status asked for again in the background")
        release.set()

        async def kept_afresh() -> bool:
            return read_model(gateway)._entries.get("alice", first).at > first.at

        await wait_until(kept_afresh, timeout=5, what="the new answer kept")
        responder.handlers["session.get"] = orchestrator.get
        assert [await status_of(gateway, tokens, "alice") for _ in range(3)] == ["WORKING"] * 3
        assert asked(responder, "alice") == 2


async def test_reads_with_nothing_kept_while_one_asks_wait_for_its_answer(two_gateways, orchestrator, responder, tokens):
    a, _ = two_gateways
    orchestrator.statuses["alice"] = "WORKING"
    release = held_answers(orchestrator, responder)
    reads = [asyncio.create_task(status_of(a, tokens, "alice")) for _ in range(5)]
    await until_asked(responder, "alice", 1, "the first read asked")
    release.set()
    assert await asyncio.gather(*reads) == ["WORKING"] * 5
    assert asked(responder, "alice") == 1


async def test_with_no_ttl_every_read_asks_the_orchestrator(gateway_factory, orchestrator, responder, tokens):
    async with gateway_factory(status_cache_ttl=0) as gateway:
        for _ in range(3):
            assert await status_of(gateway, tokens, "alice") == "STOPPED"
    assert asked(responder, "alice") == 3


async def test_a_running_history_import_is_read_afresh_each_time(two_gateways, orchestrator, responder, tokens):
    a, _ = two_gateways
    orchestrator.statuses["alice"] = "WORKING"
    counts = []
    for chats in (1, 2, 3):  # the import's counts move with no event to say so
        orchestrator.imports["alice"] = HistoryImportView(state="running", chats=chats, messages=10 * chats)
        counts.append((await a.get(STATUS, headers=tokens.auth("alice"))).json()["historyImport"]["chats"])
    assert counts == [1, 2, 3]
    orchestrator.imports["alice"] = HistoryImportView(state="done", chats=3, messages=30)
    before = asked(responder, "alice")
    assert [(await a.get(STATUS, headers=tokens.auth("alice"))).json()["historyImport"]["state"]
            for _ in range(3)] == ["done"] * 3
    assert asked(responder, "alice") == before + 1  # a finished import is kept again
