"""Subscriptions and deliveries end to end through the dispatcher: signed, in order, retried,
isolated per user and per endpoint."""

import json
import time

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts.webhooks import CreateWebhook, DeleteWebhook, ListDeliveries, ListWebhooks
from webhook_dispatcher.signing import verify

from .conftest import message

pytestmark = pytest.mark.integration

ALICE, BOB = "alice", "bob"


async def subscribe(ask, user: str, url: str, events: list[str] | None = None) -> dict:
    reply = await ask(user, CreateWebhook(url=url, **({"events": events} if events else {})))
    assert reply.ok, reply
    return reply.data


async def received(receiver, path: str, count: int, timeout: float = 15) -> list:
    async def enough():
        got = receiver.to(path)
        return got if len(got) >= count else None

    return await wait_until(enough, timeout=timeout, what=f"{count} deliveries to {path}")


async def delivered_log(ask, user: str, webhook_id: str, count: int) -> list[dict]:
    """The delivery log once `count` deliveries are recorded as delivered (a receiver has them a little earlier)."""

    async def recorded():
        items = (await ask(user, ListDeliveries(webhook_id=webhook_id))).data["items"]
        return items if sum(d["status"] == "delivered" for d in items) >= count else None

    return await wait_until(recorded, timeout=10, what=f"{count} deliveries recorded")


async def test_events_are_delivered_signed_in_order_and_only_to_their_users_webhooks(dispatcher, ask, stream, receiver):
    alice = await subscribe(ask, ALICE, receiver.url_for("/alice"))
    only_status = await subscribe(ask, ALICE, receiver.url_for("/alice-status"), ["session.*"])
    bob = await subscribe(ask, BOB, receiver.url_for("/bob"))
    assert alice["secret"].startswith("whsec_") and alice["events"] == ["*"] and only_status["events"] == ["session.*"]

    sent = [await stream(message(ALICE, n), n) for n in range(1, 6)]
    bob_sent = await stream(message(BOB, 1), 1)
    got = await received(receiver, "/alice", 5)
    assert [json.loads(r.body) for r in got] == sent
    for r in got:
        assert verify(alice["secret"], r.headers["webhook-signature"], r.body, time.time())
        assert not verify(bob["secret"], r.headers["webhook-signature"], r.body, time.time())
        assert not verify(alice["secret"], r.headers["webhook-signature"], r.body + b" ", time.time())
        assert r.headers["webhook-id"] == json.loads(r.body)["id"]
    assert [int(r.headers["webhook-seq"]) for r in got] == [1, 2, 3, 4, 5]
    assert [json.loads(r.body) for r in await received(receiver, "/bob", 1)] == [bob_sent]
    assert receiver.to("/alice-status") == []  # its filter takes no message events

    listed = (await ask(ALICE, ListWebhooks())).data["items"]
    assert {w["id"] for w in listed} == {alice["id"], only_status["id"]} and all("secret" not in w for w in listed)
    await delivered_log(ask, ALICE, alice["id"], 5)
    log = (await ask(ALICE, ListDeliveries(webhook_id=alice["id"], limit=3))).data
    assert [(d["seq"], d["status"], d["attempts"], d["lastStatus"]) for d in log["items"]] == [
        (5, "delivered", 1, 200), (4, "delivered", 1, 200), (3, "delivered", 1, 200)
    ]
    older = (await ask(ALICE, ListDeliveries(webhook_id=alice["id"], before=log["nextBefore"]))).data
    assert [d["seq"] for d in older["items"]] == [2, 1] and older["nextBefore"] is None
    # Another user's webhook is nobody's to read or delete.
    for query in (ListDeliveries(webhook_id=alice["id"]), DeleteWebhook(webhook_id=alice["id"])):
        reply = await ask(BOB, query)
        assert (reply.ok, reply.error.status, reply.error.code) == (False, 404, "webhook_not_found")


async def test_a_redelivered_event_is_delivered_once_and_a_failing_endpoint_is_retried_in_order(
    dispatcher, ask, stream, receiver
):
    hook = await subscribe(ask, ALICE, receiver.url_for("/flaky"))
    receiver.script.extend([500, 500, 500])  # the first event's first three attempts answer 500
    first = await stream(message(ALICE, 1), 1)
    await stream(message(ALICE, 1), 1)  # the stream redelivers it
    second = await stream(message(ALICE, 2), 2)
    got = await received(receiver, "/flaky", 5)
    assert [json.loads(r.body)["seq"] for r in got] == [1, 1, 1, 1, 2]  # never 2 before 1 is through
    assert json.loads(got[3].body) == first and json.loads(got[4].body) == second
    log = await delivered_log(ask, ALICE, hook["id"], 2)
    assert [(d["seq"], d["attempts"], d["status"]) for d in log] == [(2, 1, "delivered"), (1, 4, "delivered")]


async def test_a_slow_endpoint_delays_nobody_else(dispatcher, ask, stream, receiver):
    await subscribe(ask, ALICE, receiver.url_for("/slow"))
    await subscribe(ask, BOB, receiver.url_for("/fast"))
    gate = receiver.hold("/slow")
    await stream(message(ALICE, 1), 1)
    await wait_until(lambda: _async(receiver.held.get("/slow") == 1), timeout=10, what="alice's delivery held")
    started = time.monotonic()
    for n in range(1, 11):
        await stream(message(BOB, n), n)
    await received(receiver, "/fast", 10)
    assert time.monotonic() - started < 3, "bob's deliveries waited for alice's endpoint"
    gate.set()
    await received(receiver, "/slow", 1)


async def test_bad_urls_and_filters_are_refused(ask, dispatcher):
    reply = await ask(ALICE, CreateWebhook(url="ftp://example.com/x"))
    assert (reply.ok, reply.error.code, reply.error.status) == (False, "invalid_url", 400)
    unchecked = CreateWebhook.model_construct(url="https://example.com/x", events=["message.nope"])
    reply = await ask(ALICE, unchecked)
    assert (reply.ok, reply.error.code, reply.error.status) == (False, "invalid_request", 400)
    assert "message.nope" in reply.error.message
    assert (await ask(ALICE, ListWebhooks())).data["items"] == []


async def _async(value):
    return value


async def test_private_targets_are_refused_unless_allowed(topology, rabbitmq_url, mongodb_url, mongo_db, ask, stored):
    from asgi_lifespan import LifespanManager

    from webhook_dispatcher.app import create_app

    from .conftest import dispatcher_settings

    strict = dispatcher_settings(topology, rabbitmq_url, mongodb_url, mongo_db.name, webhook_allow_private_targets=False)
    async with LifespanManager(create_app(strict), startup_timeout=30, shutdown_timeout=30):
        for url in ("http://nowhere.invalid/hook", "http://127.0.0.1:9/x", "http://localhost/x", "http://10.0.0.8/x", "http://169.254.169.254/latest",
                    "http://[::1]/x"):
            reply = await ask(ALICE, CreateWebhook(url=url))
            assert (reply.ok, reply.error.code, reply.error.status) == (False, "invalid_url", 400), url


async def test_a_new_webhook_starts_at_the_streams_head_whichever_event_comes_first(
    dispatcher, ask, stream, stored, receiver
):
    def stored_event(n: int) -> dict:
        return {**message(ALICE, n).wire(), "seq": n}

    stored[ALICE] = [stored_event(n) for n in range(1, 4)]  # before the webhook: not its business
    hook = await subscribe(ask, ALICE, receiver.url_for("/first"))
    # Two persisters: 5 is published before 4, which was stored first (5 is numbered after it).
    stored[ALICE].append(stored_event(4))
    await stream(message(ALICE, 5), 5)
    await stream(message(ALICE, 4), 4)
    await stream(message(ALICE, 6), 6)
    assert [json.loads(r.body)["seq"] for r in await received(receiver, "/first", 3)] == [4, 5, 6]

    # Deleted, then made again: what came in between is not the new webhook's either.
    assert (await ask(ALICE, DeleteWebhook(webhook_id=hook["id"]))).ok
    for n in (7, 8):
        await stream(message(ALICE, n), n)
    await subscribe(ask, ALICE, receiver.url_for("/again"))
    await stream(message(ALICE, 9), 9)
    assert [json.loads(r.body)["seq"] for r in await received(receiver, "/again", 1)] == [9]
    await stream(message(ALICE, 10), 10)
    assert [json.loads(r.body)["seq"] for r in await received(receiver, "/again", 2)] == [9, 10]
