"""The gateway on the real RabbitMQ, with a test responder bound to the real topology queues."""

import asyncio
import base64
import time

import pytest

from fleet_devtools.localdev import wait_until
from fleet_devtools.testing.proxy import TcpProxy
from fleet_shared.contracts import Reply
from fleet_shared.contracts.commands import QrView, SentView, SessionView
from fleet_shared.contracts.pages import ChatPage, MessagePage
from fleet_shared.ids import session_name_for

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def session_view(env: dict) -> Reply:
    return Reply.success(
        SessionView(user_id=env["userId"], session=session_name_for(env["userId"]), status="STOPPED")
    )


CHAT = {
    "chatId": "4915112345678@c.us", "name": "Max", "isGroup": False, "updatedAt": "2026-11-28T10:00:00+00:00",
    "lastMessage": {"id": "false_4915112345678@c.us_A1", "body": "hi", "fromMe": False, "timestamp": 1_700_000_000},
    "unreadCount": 1, "picture": None, "phone": None, "participants": None,
}
MESSAGE = {
    "id": "false_4915112345678@c.us_A1", "chatId": "4915112345678@c.us", "fromMe": False, "from": "4915112345678@c.us",
    "to": "15550001111@c.us", "participant": None, "body": "hi", "type": "chat", "hasMedia": False,
    "timestamp": 1_700_000_000, "ack": 2, "media": None, "replyTo": None, "reactions": [], "editedAt": None,
    "revokedAt": None, "fromPhone": None, "fromLid": None,
}


async def a_page(env: dict) -> Reply:
    if env["type"] == "message.list":
        return Reply.success(MessagePage(items=[MESSAGE], next_cursor="next-1"))
    return Reply.success(ChatPage(items=[CHAT], next_cursor="next-1"))


def answer_page(responder) -> None:
    for t in ("chat.list", "group.list", "contact.list", "message.list"):
        responder.handlers[t] = a_page


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_status_is_asked_for_the_token_user_two_users_at_once(gateway, responder, tokens):
    responder.handlers["session.get"] = session_view
    alice, bob = await asyncio.gather(
        # A user id in the query string is not an identity: only the token's sub counts.
        gateway.get("/api/v1/waha/status", params={"userId": "bob"}, headers=tokens.auth("alice")),
        gateway.get("/api/v1/waha/status", headers=tokens.auth("bob")),
    )
    assert alice.status_code == 200 and bob.status_code == 200
    assert alice.json() == {
        "userId": "alice", "session": "wf_alice", "status": "STOPPED",
        "phoneNumber": None, "lastError": None, "lastActivity": None, "updatedAt": None,
        "historyImport": {"state": "idle", "chats": 0, "messages": 0, "error": None, "startedAt": None, "finishedAt": None},
    }
    assert bob.json()["userId"] == "bob"

    seen = {s.envelope["userId"]: s for s in responder.of_type("session.get")}
    assert set(seen) == {"alice", "bob"}
    for user, s in seen.items():
        assert s.routing_key == f"user.{user}.session.get"
        assert s.queue == responder.queues[0]  # the orchestrator's query queue
        assert s.headers["x-user-id"] == user
        assert s.message_id == s.envelope["id"]
        assert s.correlation_id == s.envelope["correlationId"] and s.correlation_id
        assert s.reply_to and s.reply_to.startswith("amq.rabbitmq.reply-to")
        assert s.envelope["session"] == session_name_for(user)
        assert s.envelope["version"] == 1 and s.envelope["data"] == {}
    assert seen["alice"].correlation_id != seen["bob"].correlation_id


async def test_session_commands_go_through_the_partitions(gateway, responder, tokens, topology):
    async def started(env: dict) -> Reply:
        return Reply.success({"status": "STARTING"})

    for action in ("start", "stop", "restart", "logout"):
        responder.handlers[f"session.{action}"] = started
    for user in ("alice", "bob"):
        for action in ("start", "stop", "restart", "logout"):
            response = await gateway.post(f"/api/v1/waha/session/{action}", headers=tokens.auth(user))
            assert response.status_code == 202, response.text
            assert response.json() == {"status": "STARTING"}
    assert len(responder.seen) == 8
    for s in responder.seen:
        assert s.routing_key == f"user.{s.envelope['userId']}.{s.envelope['type']}"
        assert s.queue in topology.orchestrator_command_queues
    # Consistent hashing: all of one user's commands land in the same partition.
    for user in ("alice", "bob"):
        assert len({s.queue for s in responder.seen if s.envelope["userId"] == user}) == 1


async def test_reply_failure_becomes_that_status(gateway, responder, tokens):
    async def not_working(env: dict) -> Reply:
        return Reply.failure("session_not_working", "the session is SCAN_QR_CODE", 409)

    async def limit(env: dict) -> Reply:
        return Reply.failure("session_limit_reached", "too many sessions", 429)

    responder.handlers["message.send"] = not_working
    responder.handlers["session.start"] = limit
    response = await gateway.post(
        "/api/v1/waha/messages", json={"chatId": "123@c.us", "text": "hi"}, headers=tokens.auth()
    )
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "session_not_working", "message": "the session is SCAN_QR_CODE"}}
    assert_error(await gateway.post("/api/v1/waha/session/start", headers=tokens.auth()), 429, "session_limit_reached")


async def test_malformed_replies_are_502(gateway, responder, tokens):
    async def bad_status(env: dict) -> Reply:
        return Reply.failure("weird", "status out of range", 200)

    async def wrong_shape(env: dict) -> Reply:
        return Reply.success({"nope": True})

    responder.handlers["session.get"] = bad_status
    responder.handlers["chat.list"] = wrong_shape
    assert_error(await gateway.get("/api/v1/waha/status", headers=tokens.auth()), 502, "bad_reply")
    assert_error(await gateway.get("/api/v1/waha/chats", headers=tokens.auth()), 502, "bad_reply")


async def test_send_message(gateway, responder, tokens):
    async def sent(env: dict) -> Reply:
        return Reply.success(SentView(id="true_4915112345678@c.us_ABC", chat_id=env["data"]["chatId"], timestamp=1700000000))

    responder.handlers["message.send"] = sent
    body = {"chatId": "4915112345678", "text": "hello", "replyTo": "false_1@c.us_X"}
    headers = {**tokens.auth("alice"), "Idempotency-Key": "order-42:v1.a_b"}
    first = await gateway.post("/api/v1/waha/messages", json=body, headers=headers)
    await gateway.post("/api/v1/waha/messages", json=body, headers=headers)
    plain = await gateway.post("/api/v1/waha/messages", json={"chatId": "1@g.us", "text": "x"}, headers=tokens.auth("alice"))
    assert first.status_code == 201, first.text
    assert first.json() == {"id": "true_4915112345678@c.us_ABC", "chatId": "4915112345678@c.us", "timestamp": 1700000000}
    assert plain.status_code == 201

    envs = [s.envelope for s in responder.of_type("message.send")]
    assert [e["data"] for e in envs] == [
        {"chatId": "4915112345678@c.us", "text": "hello", "media": None, "replyTo": "false_1@c.us_X",
         "idempotencyKey": "order-42:v1.a_b"},
        {"chatId": "4915112345678@c.us", "text": "hello", "media": None, "replyTo": "false_1@c.us_X",
         "idempotencyKey": "order-42:v1.a_b"},
        {"chatId": "1@g.us", "text": "x", "media": None, "replyTo": None, "idempotencyKey": None},
    ]
    # Same key, same envelope id (a recognisable retry); each request still has its own correlation id.
    assert envs[0]["id"] == envs[1]["id"] != envs[2]["id"]
    assert envs[0]["correlationId"] != envs[1]["correlationId"]
    assert {s.routing_key for s in responder.seen} == {"user.alice.message.send"}


async def test_lists_map_their_parameters(gateway, responder, tokens, topology):
    answer_page(responder)
    chats = await gateway.get("/api/v1/waha/chats", params={"limit": 10, "cursor": "c1"}, headers=tokens.auth("bob"))
    assert chats.status_code == 200
    assert chats.json() == {"items": [CHAT], "nextCursor": "next-1"}
    groups = await gateway.get("/api/v1/waha/groups", headers=tokens.auth("bob"))
    contacts = await gateway.get("/api/v1/waha/contacts", params={"limit": 200}, headers=tokens.auth("bob"))
    assert groups.json() == contacts.json() == {"items": [CHAT], "nextCursor": "next-1"}
    messages = await gateway.get(
        "/api/v1/waha/messages", params={"chatId": "120363@g.us", "limit": 5, "before": "b1"}, headers=tokens.auth("bob")
    )
    assert messages.status_code == 200
    assert messages.json() == {"items": [MESSAGE], "nextCursor": "next-1"}

    assert [(s.envelope["userId"], s.envelope["data"]) for s in responder.seen] == [
        ("bob", {"limit": 10, "cursor": "c1"}),
        ("bob", {"limit": 50, "cursor": None}),
        ("bob", {"limit": 200, "cursor": None}),
        ("bob", {"chatId": "120363@g.us", "limit": 5, "before": "b1"}),
    ]
    assert [s.routing_key for s in responder.seen] == [
        "user.bob.chat.list", "user.bob.group.list", "user.bob.contact.list", "user.bob.message.list",
    ]
    assert {s.queue for s in responder.seen} == {topology.persister_queries}


async def test_a_page_that_breaks_the_contract_is_a_502(gateway, responder, tokens):
    async def broken(env: dict) -> Reply:
        # A bare dict: no page model would take this item.
        return Reply.success({"items": [{"userId": env["userId"]}], "nextCursor": None})

    responder.handlers["chat.list"] = broken
    assert_error(await gateway.get("/api/v1/waha/chats", headers=tokens.auth()), 502, "bad_reply")


async def test_session_commands_answer_202_with_the_status(gateway, responder, tokens):
    statuses = {"session.start": "STARTING", "session.stop": "STOPPED", "session.restart": "STARTING",
                "session.logout": "STOPPED"}

    async def status_of(env: dict) -> Reply:
        return Reply.success({"status": statuses[env["type"]]})

    for t in statuses:
        responder.handlers[t] = status_of
    for action in ("start", "stop", "restart", "logout"):
        r = await gateway.post(f"/api/v1/waha/session/{action}", headers=tokens.auth("carol"))
        assert r.status_code == 202 and r.json() == {"status": statuses[f"session.{action}"]}, r.text
    assert [s.routing_key for s in responder.seen] == [
        f"user.carol.session.{a}" for a in ("start", "stop", "restart", "logout")
    ]


async def test_qr_json_and_image(gateway, responder, tokens):
    status = {"alice": "SCAN_QR_CODE", "bob": "WORKING"}

    async def qr(env: dict) -> Reply:
        if status[env["userId"]] == "WORKING":
            return Reply.success(QrView(status="WORKING", qr=None))
        data = base64.b64encode(PNG).decode()
        return Reply.success(QrView(status="SCAN_QR_CODE", qr={"value": "2@abc", "mimetype": "image/png", "data": data}))

    responder.handlers["session.qr"] = qr
    as_json = await gateway.get("/api/v1/waha/qr", headers=tokens.auth("alice"))
    assert as_json.status_code == 200
    assert as_json.json() == {
        "status": "SCAN_QR_CODE", "qr": {"value": "2@abc", "mimetype": "image/png", "data": base64.b64encode(PNG).decode()}
    }
    image = await gateway.get("/api/v1/waha/qr", params={"format": "image"}, headers=tokens.auth("alice"))
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG

    assert (await gateway.get("/api/v1/waha/qr", headers=tokens.auth("bob"))).json() == {"status": "WORKING", "qr": None}
    assert_error(await gateway.get("/api/v1/waha/qr?format=image", headers=tokens.auth("bob")), 409, "no_qr")
    assert {s.routing_key for s in responder.seen} == {"user.alice.session.qr", "user.bob.session.qr"}


async def test_no_answer_is_504_within_the_request_timeout(gateway, tokens):
    started = time.monotonic()
    response = await gateway.get("/api/v1/waha/status", headers=tokens.auth())
    elapsed = time.monotonic() - started
    assert_error(response, 504, "timeout")
    assert 0.9 <= elapsed < 3.0


async def test_silent_handler_is_504_and_others_still_answer(gateway, responder, tokens):
    async def silent(env: dict) -> None:
        return None

    responder.handlers["session.get"] = silent
    answer_page(responder)
    stuck, chats = await asyncio.gather(
        gateway.get("/api/v1/waha/status", headers=tokens.auth()),
        gateway.get("/api/v1/waha/chats", headers=tokens.auth()),
    )
    assert_error(stuck, 504, "timeout")
    assert chats.status_code == 200


async def test_100_concurrent_requests_are_all_in_flight_at_once(gateway_factory, responder, tokens):
    """The responder answers nobody until it holds all 100 requests: serialized requests would time out."""
    n = 100
    everyone_asked = asyncio.Event()

    async def barrier(env: dict) -> Reply:
        if len(responder.of_type("session.get")) >= n:
            everyone_asked.set()
        await everyone_asked.wait()
        return await session_view(env)

    responder.handlers["session.get"] = barrier
    users = [f"user_{i}" for i in range(n)]
    async with gateway_factory(request_timeout=5.0) as gateway:
        responses = await asyncio.gather(
            *(gateway.get("/api/v1/waha/status", headers=tokens.auth(u)) for u in users)
        )
    assert [r.status_code for r in responses] == [200] * n
    assert [r.json()["userId"] for r in responses] == users
    assert sorted(s.routing_key for s in responder.seen) == sorted(f"user.{u}.session.get" for u in users)


async def test_metrics_count_requests_by_route_and_status(gateway, responder, tokens):
    responder.handlers["session.get"] = session_view
    assert (await gateway.get("/api/v1/waha/status", headers=tokens.auth())).status_code == 200
    metrics = (await gateway.get("/metrics")).text
    assert 'gateway_http_requests_total{method="GET",route="/api/v1/waha/status",status="200"}' in metrics
    assert 'gateway_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/waha/status",status="200"}' in metrics
    assert 'gateway_rpc_requests_total{outcome="ok",type="session.get"}' in metrics
    ready = await gateway.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_gateway_starts_without_broker_connects_when_it_appears_and_survives_an_outage(
    gateway_factory, responder, tokens, rabbitmq_url
):
    responder.handlers["session.get"] = session_view

    with TcpProxy.to_url(rabbitmq_url) as proxy:
        proxy.down()
        async with gateway_factory(wait_ready=False, rabbitmq_url=proxy.url_for(rabbitmq_url)) as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            async def status_ok() -> bool:
                return (await client.get("/api/v1/waha/status", headers=tokens.auth())).status_code == 200

            assert_error(await client.get("/api/v1/waha/status", headers=tokens.auth()), 503, "broker_unavailable")
            assert (await client.get("/readyz")).status_code == 503
            proxy.up()
            await wait_until(ready, timeout=15, what="gateway connecting once the broker answers")
            response = await client.get("/api/v1/waha/status", headers=tokens.auth())
            assert response.status_code == 200 and response.json()["userId"] == "alice"

            proxy.down()
            await wait_until(lambda: _not(ready), timeout=10, what="gateway noticing the outage")
            assert_error(await client.get("/api/v1/waha/status", headers=tokens.auth()), 503, "broker_unavailable")

            proxy.up()
            await wait_until(ready, timeout=20, what="gateway reconnecting")
            await wait_until(status_ok, timeout=10, what="requests answered again after reconnecting")


async def _not(check) -> bool:
    return not await check()


async def test_start_up_objects_are_frozen_while_serving(gateway_factory):
    import gc

    gc.unfreeze()
    async with gateway_factory(wait_ready=False):
        assert gc.get_freeze_count() > 0  # full collections under load no longer walk the modules and the app
    assert gc.get_freeze_count() == 0
