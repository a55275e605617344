"""Issue 5 end to end: live events over the WebSocket, chats and acks from persisted messages, paging.

The whole system runs as processes (the `stack` fixture); clients talk to it over real sockets.
Every test uses users of its own, so tests neither see nor disturb each other's data.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aio_pika
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts.events import SessionQrUpdated
from fleet_shared.ids import session_name_for
from fleet_shared.routing import user_key

from ..conftest import auth, token_for
from ..helpers import connect, inbound, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Live:
    """A client of `/api/v1/events` that keeps every frame it got."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.closed: ConnectionClosed | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except ConnectionClosed as exc:
            self.closed = exc

    def of(self, event_type: str, **data) -> list[dict]:
        return [
            f for f in self.frames if f["type"] == event_type and all(f["data"].get(k) == v for k, v in data.items())
        ]

    async def wait_for(self, event_type: str, timeout: float = 15, **data) -> dict:
        async def seen() -> list[dict]:
            return self.of(event_type, **data)

        found = await wait_until(seen, timeout=timeout, what=f"{event_type} {data or ''} on the socket")
        return found[0]


@asynccontextmanager
async def live(stack, user: str, *, in_query: bool = False) -> AsyncIterator[Live]:
    """A socket for `user` (token in the header, or in `?token=` as a browser sends it), subscribed."""
    url = stack.url("gateway").replace("http://", "ws://") + "/api/v1/events"
    if in_query:
        ws = await ws_connect(f"{url}?token={token_for(user)}")
    else:
        ws = await ws_connect(url, additional_headers=auth(user))
    client = Live(ws)
    try:
        # Subscribed once an event published now reaches the socket (the queue is bound).
        await wait_until(lambda: _routed(stack, user), timeout=15, what=f"{user}'s live queue bound")
        yield client
    finally:
        await ws.close()
        await client._reader


async def _routed(stack, user: str) -> bool:
    """Publish a probe as `user`'s qr_updated on `<p>.stream` as mandatory: True when a queue took
    it (only live queues bind it there). Not an event: the socket drops it, nothing is stored."""
    prefix = stack.config.env["BROKER_PREFIX"]
    connection = await aio_pika.connect(stack.config.env["RABBITMQ_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(f"{prefix}.stream", ensure=False)
        try:
            await exchange.publish(
                aio_pika.Message(b"probe"), routing_key=user_key(user, SessionQrUpdated.TYPE), mandatory=True
            )
        except aio_pika.exceptions.DeliveryError:
            return False
    return True


async def _not(check: Callable, *args) -> bool:
    return not await check(*args)


async def messages_of(gateway, user: str, chat_id: str, **params) -> dict:
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": chat_id, **params}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_two_users_watch_their_own_events_as_they_happen(stack, gateway, waha):
    alice, bob = unique_user("live_a"), unique_user("live_b")
    async with live(stack, alice) as a, live(stack, bob, in_query=True) as b:
        await asyncio.gather(connect(gateway, waha, alice, "15551110001"), connect(gateway, waha, bob, "15551110002"))
        # Connecting shows up live: the status moving on to WORKING.
        for client, user in ((a, alice), (b, bob)):
            await client.wait_for("session.status_changed", status="WORKING")
            assert {f["userId"] for f in client.frames} == {user}

        received = await inbound(waha, alice, "4915112345678", "Hi Alice!")
        frame = await a.wait_for("message.received", id=received["id"])
        assert frame["data"]["body"] == "Hi Alice!" and frame["data"]["fromMe"] is False
        assert frame["session"] == session_name_for(alice) and frame["version"] == 1

        r = await gateway.post(
            "/api/v1/waha/messages", headers=auth(alice), json={"chatId": "4915112345678@c.us", "text": "Hi!"}
        )
        assert r.status_code == 201, r.text
        sent_id = r.json()["id"]
        assert (await a.wait_for("message.sent", id=sent_id))["data"]["fromMe"] is True
        await a.wait_for("message.ack", id=sent_id, ack=2)
        acks = [f["data"]["ack"] for f in a.of("message.ack", id=sent_id)]
        assert acks == sorted(acks) and acks[-1] == 2, acks

        # Bob's socket saw none of it: his own message arrives, alice's never did.
        own = await inbound(waha, bob, "4915112345678", "Hi Bob!")
        await b.wait_for("message.received", id=own["id"])
        assert {f["userId"] for f in b.frames} == {bob}
        assert not [f for f in b.frames if f["data"].get("id") in (received["id"], sent_id)]
        for client in (a, b):
            assert not client.of("session.status_reported"), "an internal event reached a client"


async def test_closing_the_socket_frees_its_queue(stack):
    user = unique_user("live_close")
    async with live(stack, user):
        assert await _routed(stack, user)
    # Once closed, no queue binds the user's qr_updated any more: the broker returns it.
    await wait_until(lambda: _not(_routed, stack, user), timeout=10, what="the live queue deleted")


async def test_a_bad_token_is_refused_with_1008(stack):
    url = stack.url("gateway").replace("http://", "ws://") + "/api/v1/events?token=nope"
    async with ws_connect(url) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd.code == 1008 and info.value.rcvd.reason.startswith("invalid_token")


async def test_acks_move_forward_only_and_chats_come_from_stored_messages(stack, gateway, waha):
    user = unique_user("chats")
    await connect(gateway, waha, user, "15551110003")
    contact, group = "4915100000001", "120363000000000001@g.us"
    first = await inbound(waha, user, contact, "first")
    r = await gateway.post("/api/v1/waha/messages", headers=auth(user), json={"chatId": f"{contact}@c.us", "text": "reply"})
    assert r.status_code == 201, r.text
    sent_id = r.json()["id"]
    in_group = await waha.post(
        f"/_emulator/sessions/{session_name_for(user)}/inbound",
        json={"from": group, "participant": "4915100000009", "body": "in the group"},
    )
    assert in_group.status_code == 201, in_group.text

    async def delivered() -> dict | None:
        items = (await messages_of(gateway, user, f"{contact}@c.us"))["items"]
        mine = [m for m in items if m["id"] == sent_id and m["ack"] == 2]
        return mine[0] if mine else None

    sent = await wait_until(delivered, timeout=15, what="the sent message stored as delivered (ack 2)")
    assert sent["fromMe"] is True and sent["body"] == "reply"

    # read (3), then a late "server" ack (1): the message stays read.
    ack_url = f"/_emulator/sessions/{session_name_for(user)}/ack"
    assert (await waha.post(ack_url, json={"id": sent_id, "ack": 3})).status_code == 201

    async def read() -> bool:
        items = (await messages_of(gateway, user, f"{contact}@c.us"))["items"]
        return any(m["id"] == sent_id and m["ack"] == 3 for m in items)

    await wait_until(read, timeout=15, what="the message read (ack 3)")
    assert (await waha.post(ack_url, json={"id": sent_id, "ack": 1})).status_code == 201
    marker = await inbound(waha, user, contact, "after the stale ack")

    async def marker_stored() -> list[dict]:
        items = (await messages_of(gateway, user, f"{contact}@c.us"))["items"]
        return items if any(m["id"] == marker["id"] for m in items) else []

    items = await wait_until(marker_stored, timeout=15, what="a message sent after the stale ack")
    assert [m["ack"] for m in items if m["id"] == sent_id] == [3], "an ack went backward"

    async def chats() -> list[dict]:
        r = await gateway.get("/api/v1/waha/chats", headers=auth(user))
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        return items if {c["chatId"] for c in items} == {f"{contact}@c.us", group} else []

    by_id = {c["chatId"]: c for c in await wait_until(chats, timeout=15, what="both chats listed")}
    assert by_id[f"{contact}@c.us"]["isGroup"] is False and by_id[group]["isGroup"] is True
    # WhatsApp timestamps are whole seconds: within one second the greater id is the later (documented).
    newest = max(items, key=lambda m: (m["timestamp"], m["id"]))
    assert marker["timestamp"] >= sent["timestamp"]
    assert by_id[f"{contact}@c.us"]["lastMessage"]["id"] == newest["id"]
    assert by_id[group]["lastMessage"]["body"] == "in the group"
    assert first["id"] != marker["id"]
    groups = (await gateway.get("/api/v1/waha/groups", headers=auth(user))).json()["items"]
    contacts = (await gateway.get("/api/v1/waha/contacts", headers=auth(user))).json()["items"]
    assert [c["chatId"] for c in groups] == [group]
    assert [c["chatId"] for c in contacts] == [f"{contact}@c.us"]


async def test_paging_messages_is_stable_while_new_ones_arrive(stack, gateway, waha):
    user = unique_user("pages")
    await connect(gateway, waha, user, "15551110004")
    sender = "4915100000002"
    chat = f"{sender}@c.us"
    before = [(await inbound(waha, user, sender, f"old {n}"))["id"] for n in range(30)]

    async def all_stored() -> bool:
        return len((await messages_of(gateway, user, chat, limit=200))["items"]) == 30

    await wait_until(all_stored, timeout=20, what="30 messages stored")

    seen: list[dict] = []
    cursor, n = None, 0
    while True:
        page = await messages_of(gateway, user, chat, limit=7, **({"before": cursor} if cursor else {}))
        seen += page["items"]
        for _ in range(3):  # new messages land between every two page requests
            await inbound(waha, user, sender, f"new {n}")
            n += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    ids = [m["id"] for m in seen]
    assert len(ids) == len(set(ids)), "a message was handed out twice"
    assert set(before) <= set(ids), "a message stored before paging began was skipped"
    # Newest first: by second, and within one second by arrival (docs/api.md), which the ids do not tell.
    seconds = [m["timestamp"] for m in seen]
    assert seconds == sorted(seconds, reverse=True), "pages are not newest first"


async def test_paging_chats_is_stable_while_new_chats_appear(stack, gateway, waha):
    user = unique_user("chatpages")
    await connect(gateway, waha, user, "15551110005")
    old = [f"49152000000{n:02d}" for n in range(12)]
    for sender in old:
        await inbound(waha, user, sender, "hello")

    async def listed() -> bool:
        r = await gateway.get("/api/v1/waha/chats", params={"limit": 200}, headers=auth(user))
        return len(r.json()["items"]) == len(old)

    await wait_until(listed, timeout=20, what="12 chats listed")
    seen: list[dict] = []
    cursor, n = None, 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        r = await gateway.get("/api/v1/waha/chats", params=params, headers=auth(user))
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        await inbound(waha, user, f"49153000000{n:02d}", "a new chat")
        n += 1
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    chat_ids = [c["chatId"] for c in seen]
    assert len(chat_ids) == len(set(chat_ids))
    assert {f"{s}@c.us" for s in old} <= set(chat_ids)
    keys = [(c["lastMessage"]["timestamp"], c["chatId"]) for c in seen]
    assert keys == sorted(keys, reverse=True)


async def test_qr_as_a_png_and_session_commands_show_up_live(stack, gateway):
    user = unique_user("qrimg")
    async with live(stack, user) as socket:
        r = await gateway.get("/api/v1/waha/qr", params={"format": "image"}, headers=auth(user))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png" and r.headers["cache-control"] == "no-store"
        assert r.content.startswith(PNG_MAGIC)
        await socket.wait_for("session.status_changed", status="SCAN_QR_CODE")
        qr = await gateway.get("/api/v1/waha/qr", headers=auth(user))
        await socket.wait_for("session.qr_updated", value=qr.json()["qr"]["value"])

        r = await gateway.post("/api/v1/waha/session/stop", headers=auth(user))
        assert r.status_code == 202 and r.json()["status"] in ("STOPPED", "SCAN_QR_CODE"), r.text
        await socket.wait_for("session.status_changed", status="STOPPED")
        r = await gateway.get("/api/v1/waha/qr", params={"format": "image"}, headers=auth(user))
        assert r.status_code == 200 and r.content.startswith(PNG_MAGIC)  # asking for a QR starts it again

        for action in ("start", "restart", "logout"):
            r = await gateway.post(f"/api/v1/waha/session/{action}", headers=auth(user))
            assert r.status_code == 202, (action, r.text)
            assert set(r.json()) == {"status"}


async def stored_events(gateway, user: str, after: int = 0, limit: int = 500) -> dict:
    r = await gateway.get("/api/v1/events", params={"after": after, "limit": limit}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_socket_resumes_after_a_seq_without_gap_or_duplicate_while_events_keep_coming(stack, gateway, waha):
    user, other = unique_user("resume"), unique_user("resume_other")
    await asyncio.gather(connect(gateway, waha, user, "15551110006"), connect(gateway, waha, other, "15551110007"))
    sender = "4915100000003"
    for n in range(20):
        await inbound(waha, user, sender, f"before {n}")
    await inbound(waha, other, sender, "not yours")

    async def twenty_stored() -> dict | None:
        page = await stored_events(gateway, user)
        return page if len([e for e in page["items"] if e["type"] == "message.received"]) == 20 else None

    page = await wait_until(twenty_stored, timeout=20, what="20 messages in the event stream")
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == list(range(1, len(seqs) + 1)) and page["next"] == seqs[-1]
    assert {e["userId"] for e in page["items"]} == {user}
    assert {e["type"] for e in page["items"]} >= {"session.status_changed", "message.received"}
    # Paging: `next` goes on where the page stopped; the other user's stream is their own.
    first = await stored_events(gateway, user, limit=5)
    assert [e["seq"] for e in first["items"]] == [1, 2, 3, 4, 5] and first["next"] == 5
    assert [e["seq"] for e in (await stored_events(gateway, user, after=5, limit=3))["items"]] == [6, 7, 8]
    assert {e["userId"] for e in (await stored_events(gateway, other))["items"]} == {other}
    bad = await gateway.get("/api/v1/events", params={"after": -1}, headers=auth(user))
    assert bad.status_code == 422

    resume_at = seqs[len(seqs) // 2]
    # Messages keep arriving while the socket binds its queue and catches up.
    arriving = asyncio.create_task(_inbound_many(waha, user, sender, 30))
    url = stack.url("gateway").replace("http://", "ws://") + f"/api/v1/events?after={resume_at}&token={token_for(user)}"
    async with ws_connect(url) as ws:
        client = Live(ws)
        await arriving

        async def all_stored() -> int | None:
            items = (await stored_events(gateway, user, after=resume_at))["items"]
            return items[-1]["seq"] if len([e for e in items if e["data"].get("body", "").startswith("during")]) == 30 else None

        last = await wait_until(all_stored, timeout=30, what="the 30 messages sent during the catch-up stored")

        async def caught_up() -> bool:
            return bool(client.frames) and client.frames[-1]["seq"] >= last

        await wait_until(caught_up, timeout=20, what=f"the socket up to seq {last}")
        got = [f["seq"] for f in client.frames]
        assert got == list(range(resume_at + 1, last + 1)), "a gap or a duplicate at the seam"
        assert {f["userId"] for f in client.frames} == {user}
        await ws.close()
        await client._reader


async def _inbound_many(waha, user: str, sender: str, count: int) -> None:
    for n in range(count):
        await inbound(waha, user, sender, f"during {n}")
