"""Single-use tickets for the live-events WebSocket (issue 22): a browser opens its socket without a
token in the URL."""

import json
import time
from datetime import timedelta

import aio_pika
import httpx
import pytest
from websockets.asyncio.client import connect

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import Envelope, envelope
from fleet_shared.contracts.events import SessionQrUpdated
from fleet_shared.http import ApiError
from fleet_shared.routing import user_key
from gateway.auth import Principal
from gateway.tickets import TicketIssuer

from .conftest import SECRET, gateway_settings
from .test_live_events import closed_with, frame, served

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def refused(issuer: TicketIssuer, ticket: str) -> str:
    with pytest.raises(ApiError) as info:
        issuer.redeem(ticket)
    assert info.value.status == 401
    return info.value.code


def test_a_ticket_opens_once_within_its_lifetime_as_its_user():
    clock = Clock()
    issuer = TicketIssuer(SECRET, timedelta(seconds=30), clock=clock)
    token_expires = clock.now + 600
    ticket = issuer.issue(Principal("alice", "admin", token_expires))

    assert issuer.redeem(ticket) == Principal("alice", "admin", token_expires)
    assert refused(issuer, ticket) == "invalid_ticket"  # the second time

    late = issuer.issue(Principal("bob"))
    clock.now += 30
    assert refused(issuer, late) == "ticket_expired"
    assert refused(TicketIssuer("another-secret-0123456789-abcdefghij"), issuer.issue(Principal("carol"))) == "invalid_ticket"
    assert refused(issuer, "not-a-ticket") == "invalid_ticket"


@pytest.fixture
async def gateway(topology, rabbitmq_url):
    settings = gateway_settings(rabbitmq_url=rabbitmq_url, broker_prefix=topology.prefix,
                                orchestrator_partitions=topology.partitions)
    async with served(settings) as running:
        yield running


async def publish(rabbitmq_url: str, exchange_name: str, env: Envelope, seq: int) -> None:
    """As the persister publishes a stored event: with its `seq`."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(exchange_name, ensure=False)
        body = json.dumps({**env.wire(), "seq": seq}).encode()
        await exchange.publish(aio_pika.Message(body), routing_key=user_key(env.user_id, env.type))


async def test_a_browser_opens_its_socket_with_a_ticket_once_and_the_ticket_is_no_token(
    gateway, tokens, rabbitmq_url, topology, persister
):
    app, base = gateway
    async with httpx.AsyncClient(base_url=f"http://{base}") as client:
        issued = await client.post("/api/v1/events/ticket", headers=tokens.auth("erin"))
        assert issued.status_code == 201, issued.text
        assert issued.json()["expiresIn"] == 30
        ticket = issued.json()["ticket"]
        assert (await client.post("/api/v1/events/ticket")).status_code == 401
        # A ticket is no bearer token for anything else.
        as_bearer = await client.get("/api/v1/waha/status", headers={"Authorization": f"Bearer {ticket}"})
        assert (as_bearer.status_code, as_bearer.json()["error"]["code"]) == (401, "invalid_token")

    url = f"ws://{base}/api/v1/events?ticket={ticket}"
    async with connect(url) as ws:
        await wait_until(lambda: _async(bool(app.state.live.queues("erin"))), timeout=10, what="erin's live queue")
        qr = envelope(SessionQrUpdated(value="2@ticket"), "erin")
        await publish(rabbitmq_url, topology.stream, qr, seq=1)
        assert (await frame(ws))["id"] == qr.id

    async with connect(url) as again:
        assert await closed_with(again) == (1008, "invalid_ticket: the ticket was used already: ask for a new one")


async def _async(value: bool) -> bool:
    return value
