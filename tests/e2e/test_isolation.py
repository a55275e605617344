"""5: nothing leaks between users.

- Through every endpoint of the gateway's API (checked against its OpenAPI document, so a new
  endpoint without a check here fails) and its live event stream, user B with a valid token gets
  nothing of user A's, and B's actions leave A's session alone.
- On the broker, a subscriber bound to `user.<A>.#` receives only A's events, and all of them,
  while 50 users receive and send messages at the same time.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import jwt
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth
from ..helpers import bounded, connect, inbound, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

GROUP = "120363000000000042@g.us"


@asynccontextmanager
async def live_frames(stack, user: str) -> AsyncIterator[list[dict]]:
    """Every frame `user`'s WebSocket on /api/v1/events receives while the block runs."""
    url = stack.url("gateway").replace("http://", "ws://") + "/api/v1/events"
    frames: list[dict] = []
    async with ws_connect(url, additional_headers=auth(user)) as ws:

        async def read() -> None:
            try:
                async for raw in ws:
                    frames.append(json.loads(raw))
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(read())
        try:
            yield frames
        finally:
            await ws.close()
            await reader


async def frames_with(frames: list[dict], predicate, what: str) -> list[dict]:
    async def found() -> list[dict]:
        return [f for f in frames if predicate(f)]

    return await wait_until(found, timeout=20, what=what)


async def test_user_b_gets_nothing_of_user_as_through_any_endpoint_or_the_live_stream(stack, gateway, waha):
    a, b = unique_user("iso_a"), unique_user("iso_b")
    a_phone, b_phone, contact = "15557000001", "15557000002", "4915770000001"
    async with live_frames(stack, a) as a_frames, live_frames(stack, b) as b_frames:
        await asyncio.gather(connect(gateway, waha, a, a_phone), connect(gateway, waha, b, b_phone))
        # B's socket is subscribed (its own WORKING arrived) before anything of A's happens.
        await frames_with(b_frames, lambda f: f["data"].get("status") == "WORKING", "B's own status on B's socket")

        # A's account: a contact's message, a group message, one of A's own.
        secret = await inbound(waha, a, contact, "a secret for A only")
        r = await waha.post(f"/_emulator/sessions/{session_name_for(a)}/inbound",
                            json={"from": GROUP, "participant": "4915770000002", "body": "group secret of A"})
        group_message = r.json()
        r = await gateway.post("/api/v1/waha/messages", headers=auth(a), json={"chatId": f"{contact}@c.us", "text": "A writes back"})
        assert r.status_code == 201, r.text
        a_sent = r.json()["id"]
        a_ids = {secret["id"], group_message["id"], a_sent}
        await frames_with(a_frames, lambda f: f["data"].get("id") == a_sent and f["type"] == "message.ack", "A's own events live")

        async def a_history_complete() -> bool:
            r = await gateway.get("/api/v1/waha/messages", params={"chatId": f"{contact}@c.us", "limit": 1}, headers=auth(a))
            return len(r.json()["items"]) == 1 and r.json()["nextCursor"] is not None

        await wait_until(a_history_complete, timeout=20, what="A's history stored")
        a_cursor = (await gateway.get("/api/v1/waha/messages", params={"chatId": f"{contact}@c.us", "limit": 1},
                                      headers=auth(a))).json()["nextCursor"]
        a_chat_cursor = (await gateway.get("/api/v1/waha/chats", params={"limit": 1}, headers=auth(a))).json()["nextCursor"]
        forbidden = [a, session_name_for(a), a_phone, "secret", "A writes back", *a_ids]

        def nothing_of_a(text: str) -> None:
            leaked = [word for word in forbidden if word in text]
            assert not leaked, (leaked, text[:500])

        covered: set[tuple[str, str]] = set()

        async def b_calls(method: str, path: str, *, template: str | None = None, echo: str = "", **kwargs):
            """`template`: the documented path `path` is; `echo`: what B itself put in the call (an answer
            may name it back; that tells B nothing)."""
            covered.add((method, template or path))
            r = await gateway.request(method, path, headers=auth(b), **kwargs)
            text = r.text if r.headers.get("content-type", "").startswith("application/json") else ""
            nothing_of_a(text.replace(echo, "") if echo else text)
            return r

        assert (await b_calls("GET", "/api/v1/waha/status")).json()["userId"] == b
        assert (await b_calls("GET", "/api/v1/waha/qr")).json() == {"status": "WORKING", "qr": None}
        assert (await b_calls("GET", "/api/v1/waha/chats")).json()["items"] == []
        assert (await b_calls("GET", "/api/v1/waha/chats", params={"cursor": a_chat_cursor})).status_code in (200, 400)
        assert (await b_calls("GET", "/api/v1/waha/groups")).json()["items"] == []
        assert (await b_calls("GET", "/api/v1/waha/contacts")).json()["items"] == []
        for chat in (f"{contact}@c.us", GROUP):
            assert (await b_calls("GET", "/api/v1/waha/messages", params={"chatId": chat})).json()["items"] == []
        with_a_cursor = await b_calls("GET", "/api/v1/waha/messages", params={"chatId": f"{contact}@c.us", "before": a_cursor})
        assert with_a_cursor.status_code == 400 or with_a_cursor.json()["items"] == []
        b_stream = (await b_calls("GET", "/api/v1/events")).json()["items"]  # live: b_frames below
        assert b_stream and {e["userId"] for e in b_stream} == {b}
        # A's webhook: B neither sees it, nor its deliveries, nor can delete it; B's own is B's.
        r = await gateway.post("/api/v1/webhooks", headers=auth(a), json={"url": f"http://127.0.0.1:9/{a}"})
        assert r.status_code == 201, r.text
        a_hook = r.json()["id"]
        assert (await b_calls("GET", "/api/v1/webhooks")).json()["items"] == []
        hook_path = "/api/v1/webhooks/{webhookId}"
        r = await b_calls("GET", f"/api/v1/webhooks/{a_hook}/deliveries", template=hook_path + "/deliveries", echo=a_hook)
        assert r.status_code == 404, r.text
        assert (await b_calls("DELETE", f"/api/v1/webhooks/{a_hook}", template=hook_path, echo=a_hook)).status_code == 404
        own = await b_calls("POST", "/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{b}"}, echo='"secret"')
        assert own.status_code == 201, own.text
        assert (await b_calls("DELETE", f"/api/v1/webhooks/{own.json()['id']}", template=hook_path)).status_code == 204
        assert [h["id"] for h in (await gateway.get("/api/v1/webhooks", headers=auth(a))).json()["items"]] == [a_hook]
        ticket = (await b_calls("POST", "/api/v1/events/ticket")).json()["ticket"]
        assert jwt.decode(ticket, options={"verify_signature": False})["sub"] == b  # it opens B's own stream

        # B writes to A's contact: through B's own session, never A's.
        a_sent_before = len((await waha.get(f"/_emulator/sessions/{session_name_for(a)}/sent")).json())
        r = await b_calls("POST", "/api/v1/waha/messages", json={"chatId": f"{contact}@c.us", "text": "B's own words"})
        assert r.status_code == 201 and r.json()["id"] not in a_ids
        assert [m["text"] for m in (await waha.get(f"/_emulator/sessions/{session_name_for(b)}/sent")).json()] == ["B's own words"]
        assert len((await waha.get(f"/_emulator/sessions/{session_name_for(a)}/sent")).json()) == a_sent_before

        # B names A's messages and chats: nothing of A's is served, nothing is done to A's session.
        frames_before_naming = len(b_frames)
        for message_id in a_ids:
            r = await b_calls("GET", f"/api/v1/waha/messages/{message_id}/media", template="/api/v1/waha/messages/{messageId}/media",
                          echo=message_id)
            assert r.status_code == 404, r.text
            r = await b_calls("POST", f"/api/v1/waha/messages/{message_id}/media/retry",
                          template="/api/v1/waha/messages/{messageId}/media/retry", echo=message_id)
            assert r.status_code in (404, 422), r.text
            # Through B's own session: B's own action on B's own account, whatever the id names.
            await b_calls("PUT", f"/api/v1/waha/messages/{message_id}/reaction",
                          template="/api/v1/waha/messages/{messageId}/reaction", echo=message_id, json={"reaction": "😈"})
            await b_calls("PATCH", f"/api/v1/waha/messages/{message_id}", template="/api/v1/waha/messages/{messageId}",
                          echo=message_id, json={"text": "B's edit"})
            await b_calls("DELETE", f"/api/v1/waha/messages/{message_id}", template="/api/v1/waha/messages/{messageId}",
                          echo=message_id)
        await b_calls("POST", f"/api/v1/waha/chats/{contact}@c.us/read", template="/api/v1/waha/chats/{chatId}/read", json={})
        await b_calls("POST", f"/api/v1/waha/chats/{contact}@c.us/typing", template="/api/v1/waha/chats/{chatId}/typing",
                      json={"typing": True})
        assert (await waha.get(f"/_emulator/sessions/{session_name_for(a)}/actions")).json() == []
        a_items = (await gateway.get("/api/v1/waha/messages", params={"chatId": f"{contact}@c.us"}, headers=auth(a))).json()
        assert all(m["reactions"] == [] and m["editedAt"] is None and m["revokedAt"] is None for m in a_items["items"])

        # Pairing and the history import: B's own session only (B is WORKING: no code to ask for).
        r = await b_calls("POST", "/api/v1/waha/pairing-code", json={"phoneNumber": a_phone}, echo=a_phone)
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_paired", r.text
        assert (await b_calls("POST", "/api/v1/waha/history/import")).status_code == 202

        # B's session commands act on B's session only.
        for action in ("restart", "stop", "start", "logout"):
            assert (await b_calls("POST", f"/api/v1/waha/session/{action}")).status_code == 202
        a_session = (await waha.get(f"/_emulator/sessions/{session_name_for(a)}")).json()
        assert a_session["status"] == "WORKING"
        assert (await gateway.get("/api/v1/waha/status", headers=auth(a))).json()["status"] == "WORKING"

        # The live stream: B's socket carried B's events only; a last one of B's marks the end.
        assert (await gateway.post("/api/v1/waha/session/start", headers=auth(b))).status_code == 202  # B logged out: a new QR
        await frames_with(b_frames, lambda f: f["type"] == "session.status_changed" and f["data"]["status"] == "SCAN_QR_CODE",
                          "B's own last event on B's socket")
        assert {f["userId"] for f in b_frames} == {b}
        for n, frame in enumerate(b_frames):
            text = json.dumps(frame)
            if n >= frames_before_naming:  # B's own reactions name the ids B gave them
                for message_id in a_ids:
                    text = text.replace(message_id, "")
            nothing_of_a(text)

    documented = {
        (method.upper(), path)
        for path, operations in (await gateway.get("/openapi.json")).json()["paths"].items()
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/admin/")
        for method in operations
    }
    assert documented <= covered, f"endpoints without an isolation check: {sorted(documented - covered)}"


async def test_a_subscriber_of_one_user_gets_only_and_all_that_users_events_while_50_users_talk(stack, gateway, waha, rabbitmq_url, topology):
    users = [unique_user(f"crowd{i:02d}") for i in range(50)]
    await bounded([lambda i=i, u=u: connect(gateway, waha, u, f"1555800{i:04d}") for i, u in enumerate(users)], 10)
    watched = users[:5]
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        queues = {}
        for user in watched:
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(topology.events, routing_key=f"user.{user}.#")
            queues[user] = queue

        expected: dict[str, set[str]] = {u: set() for u in users}

        async def talk(i: int, user: str) -> None:
            for n in range(2):
                received = await inbound(waha, user, f"49158{i:04d}{n:02d}", f"to {user} #{n}")
                expected[user].add(received["id"])
                r = await gateway.post("/api/v1/waha/messages", headers=auth(user),
                                       json={"chatId": f"49158{i:04d}{n:02d}@c.us", "text": f"from {user} #{n}"})
                assert r.status_code == 201, r.text
                expected[user].add(r.json()["id"])

        await asyncio.gather(*(talk(i, u) for i, u in enumerate(users)))

        got: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = {u: [] for u in watched}

        async def all_arrived() -> bool:
            for user, queue in queues.items():
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    got[user].append(message)
            return all(expected[u] <= {json.loads(m.body)["data"].get("id") for m in got[u]} for u in watched)

        await wait_until(all_arrived, timeout=60, interval=0.2, what="every watched user's message events")
    finally:
        await connection.close()

    for user in watched:
        envelopes = [json.loads(m.body) for m in got[user]]
        assert {m.routing_key.split(".")[1] for m in got[user]} == {user}
        assert {e["userId"] for e in envelopes} == {user}
        assert {e["session"] for e in envelopes} == {session_name_for(user)}
        others = set().union(*(expected[u] for u in users if u != user))
        assert not others & {e["data"].get("id") for e in envelopes}
        types = {e["type"] for e in envelopes}
        assert {"message.received", "message.sent", "message.ack"} <= types, types
