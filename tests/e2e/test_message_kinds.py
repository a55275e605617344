"""Issue 17 end to end: every kind of WhatsApp message, through the whole system as processes.

WAHA (the emulator) → webhook-ingest → RabbitMQ → orchestrator (media copied into GridFS) and
persister → the gateway's API; and back: uploads and URLs sent, reactions, edits, deletions,
reading and typing reaching WAHA. Each test has users of its own.
"""

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth, token_for
from ..helpers import connect, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64
VOICE = b"OggS" + bytes(range(200)) * 30
DOC = b"%PDF-1.4 " + b"report " * 300


async def send_inbound(waha: httpx.AsyncClient, user: str, sender: str, **fields) -> dict:
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/inbound", json={"from": sender, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def messages(gateway: httpx.AsyncClient, user: str, chat: str) -> list[dict]:
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": chat, "limit": 100}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def message(gateway: httpx.AsyncClient, user: str, chat: str, message_id: str) -> dict | None:
    return next((m for m in await messages(gateway, user, chat) if m["id"] == message_id), None)


async def wait_message(gateway, user: str, chat: str, message_id: str, check=lambda m: True, what: str = "") -> dict:
    async def found() -> dict | None:
        m = await message(gateway, user, chat, message_id)
        return m if m is not None and check(m) else None

    return await wait_until(found, timeout=20, what=f"{user}'s {message_id} {what}")


async def media_stored(gateway, user: str, chat: str, message_id: str) -> dict:
    return await wait_message(gateway, user, chat, message_id, lambda m: (m["media"] or {}).get("status") == "stored",
                              "with its media stored")


@pytest.fixture
async def pair(gateway, waha) -> AsyncIterator[tuple[str, str]]:
    alice, bob = unique_user("alice"), unique_user("bob")
    await asyncio.gather(connect(gateway, waha, alice, "15550101001"), connect(gateway, waha, bob, "15550101002"))
    yield alice, bob


async def test_an_image_a_voice_note_and_a_document_arrive_and_only_their_owner_downloads_them(gateway, waha, pair):
    alice, bob = pair
    sender = "4915110000001"
    chat = f"{sender}@c.us"
    photo = await send_inbound(waha, alice, sender, type="image", caption="the beach",
                               media={"mimetype": "image/jpeg", "filename": "beach.jpg",
                                      "data": base64.b64encode(PHOTO).decode()})
    voice = await send_inbound(waha, alice, sender, type="ptt",
                               media={"mimetype": "audio/ogg; codecs=opus", "data": base64.b64encode(VOICE).decode()})
    doc = await send_inbound(waha, bob, sender, type="document",
                             media={"mimetype": "application/pdf", "filename": "report.pdf",
                                    "data": base64.b64encode(DOC).decode()})

    shown = await media_stored(gateway, alice, chat, photo["id"])
    assert (shown["type"], shown["hasMedia"], shown["body"]) == ("image", True, "the beach")
    assert shown["media"] == {"kind": "image", "mimetype": "image/jpeg", "filename": "beach.jpg", "size": len(PHOTO),
                              "caption": "the beach", "status": "stored", "error": None}
    assert (await media_stored(gateway, alice, chat, voice["id"]))["media"]["kind"] == "voice"
    await media_stored(gateway, bob, chat, doc["id"])

    got = await gateway.get(f"/api/v1/waha/messages/{photo['id']}/media", headers=auth(alice))
    assert got.status_code == 200 and got.content == PHOTO
    assert got.headers["content-type"] == "image/jpeg"
    assert 'filename="beach.jpg"' in got.headers["content-disposition"]
    pdf = await gateway.get(f"/api/v1/waha/messages/{doc['id']}/media", headers=auth(bob))
    assert pdf.content == DOC and pdf.headers["content-type"] == "application/pdf"

    # Nobody sees another's file, nor learns it exists.
    for user, other in ((bob, photo["id"]), (bob, voice["id"]), (alice, doc["id"])):
        theirs = await gateway.get(f"/api/v1/waha/messages/{other}/media", headers=auth(user))
        assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "media_not_found")


async def test_a_user_sends_an_upload_and_a_url_each_once_per_key(gateway, waha, pair, tmp_path):
    alice, _ = pair
    chat = "4915110000002@c.us"
    key = {"Idempotency-Key": f"photo-{alice}"}
    files = {"file": ("beach.jpg", PHOTO, "image/jpeg")}
    data = {"chatId": chat, "text": "look!"}
    first = await gateway.post("/api/v1/waha/messages", headers={**auth(alice), **key}, data=data, files=files)
    again = await gateway.post("/api/v1/waha/messages", headers={**auth(alice), **key}, data=data, files=files)
    assert first.status_code == 201, first.text
    assert again.json() == first.json()

    served = tmp_path / "report.pdf"
    served.write_bytes(DOC)
    async with FileServer(served) as url:
        by_url = await gateway.post("/api/v1/waha/messages", headers=auth(alice),
                                    json={"chatId": chat, "media": {"url": url}})
    assert by_url.status_code == 201, by_url.text

    sent = (await waha.get(f"/_emulator/sessions/{session_name_for(alice)}/sent")).json()
    media_sends = [(s["kind"], s["sha256"], s.get("caption")) for s in sent if s["kind"] != "text"]
    assert media_sends == [("image", hashlib.sha256(PHOTO).hexdigest(), "look!"), ("file", hashlib.sha256(DOC).hexdigest(), None)]
    mine = await media_stored(gateway, alice, chat, first.json()["id"])
    assert (mine["fromMe"], mine["media"]["kind"]) == (True, "image")
    own = await gateway.get(f"/api/v1/waha/messages/{first.json()['id']}/media", headers=auth(alice))
    assert own.content == PHOTO


async def test_bad_sends_are_refused_and_send_nothing(gateway, waha, pair):
    alice, _ = pair
    chat = "4915110000003@c.us"
    headers = auth(alice)
    cases = [
        ({"data": {"chatId": chat}, "files": {"other": ("x.bin", b"x", "application/octet-stream")}}, 422),
        ({"data": {"chatId": chat, "kind": "image"}, "files": {"file": ("x.pdf", DOC, "application/pdf")}}, 415),
        ({"data": {"chatId": chat}, "files": {"file": ("big.bin", b"\0" * (16 * 1024 * 1024 + 1), "image/png")}}, 413),
        ({"json": {"chatId": chat, "media": {"url": "http://127.0.0.1:1/nothing.jpg"}}}, 422),
        ({"json": {"chatId": chat, "media": {"url": "file:///etc/passwd"}}}, 422),
        ({"json": {"chatId": chat}}, 422),
    ]
    for request, status in cases:
        r = await gateway.post("/api/v1/waha/messages", headers=headers, **request)
        assert r.status_code == status, (request.get("json") or request.get("data"), r.text)
        assert set(r.json()) == {"error"}
    missing = await gateway.post("/api/v1/waha/messages", headers=headers, data={"chatId": chat},
                                 files={"file": ("empty.jpg", b"", "image/jpeg")})
    assert missing.status_code == 400
    assert (await waha.get(f"/_emulator/sessions/{session_name_for(alice)}/sent")).json() == []


async def test_reactions_edits_deletions_and_replies_reach_the_history_and_the_live_stream(gateway, waha, pair, stack):
    alice, _ = pair
    sender = "4915110000004"
    chat = f"{sender}@c.us"
    session = session_name_for(alice)
    ws_url = stack.url("gateway").replace("http", "ws") + f"/api/v1/events?token={token_for(alice)}"
    async with ws_connect(ws_url) as ws:
        first = await send_inbound(waha, alice, sender, body="helo")
        reply = await send_inbound(waha, alice, sender, body="did you see?", replyTo=first["id"])
        await wait_message(gateway, alice, chat, reply["id"])
        assert (await waha.post(f"/_emulator/sessions/{session}/reaction",
                                json={"from": sender, "messageId": first["id"], "text": "👍"})).status_code == 201
        assert (await waha.post(f"/_emulator/sessions/{session}/edit",
                                json={"from": sender, "messageId": first["id"], "body": "hello"})).status_code == 201
        gone = await send_inbound(waha, alice, sender, body="oops, wrong chat")
        await wait_message(gateway, alice, chat, gone["id"])
        assert (await waha.post(f"/_emulator/sessions/{session}/revoke",
                                json={"from": sender, "messageId": gone["id"]})).status_code == 201

        edited = await wait_message(gateway, alice, chat, first["id"], lambda m: m["body"] == "hello" and m["reactions"],
                                    "edited and reacted to")
        assert edited["editedAt"] is not None and [r["reaction"] for r in edited["reactions"]] == ["👍"]
        assert (await message(gateway, alice, chat, reply["id"]))["replyTo"] in (first["id"], first["id"].rsplit("_", 1)[-1])
        revoked = await wait_message(gateway, alice, chat, gone["id"], lambda m: m["revokedAt"] is not None, "revoked")
        assert revoked["body"] is None

        # The user's own reaction, edit and deletion go to WAHA and come back the same way.
        mine = await gateway.post("/api/v1/waha/messages", headers=auth(alice), json={"chatId": chat, "text": "sent in haste"})
        mine_id = mine.json()["id"]
        assert (await gateway.put(f"/api/v1/waha/messages/{first['id']}/reaction", headers=auth(alice),
                                  json={"reaction": "❤️"})).status_code == 200
        assert (await gateway.patch(f"/api/v1/waha/messages/{mine_id}", headers=auth(alice),
                                    json={"text": "sent with care"})).status_code == 200
        await wait_message(gateway, alice, chat, mine_id, lambda m: m["body"] == "sent with care", "edited by alice")
        assert (await gateway.delete(f"/api/v1/waha/messages/{mine_id}", headers=auth(alice))).status_code == 200
        await wait_message(gateway, alice, chat, mine_id, lambda m: m["revokedAt"] is not None, "deleted by alice")
        both = await wait_message(gateway, alice, chat, first["id"], lambda m: len(m["reactions"]) == 2, "with two reactions")
        assert sorted(r["reaction"] for r in both["reactions"]) == sorted(["👍", "❤️"])
        actions = (await waha.get(f"/_emulator/sessions/{session}/actions")).json()
        assert [a["action"] for a in actions][:3] == ["reaction", "edit", "delete"]

        frames: list[dict] = []

        async def all_seen() -> bool:
            while True:
                try:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except TimeoutError:
                    break
            types = {f["type"] for f in frames}
            return {"message.reaction", "message.edited", "message.revoked"} <= types

        await wait_until(all_seen, timeout=15, what="reactions, edits and deletions on the socket")
        assert all(f["userId"] == alice for f in frames)


async def test_unread_counts_reading_and_typing(gateway, waha, pair):
    alice, bob = pair
    sender = "4915110000005"
    chat = f"{sender}@c.us"
    for n in range(3):
        await send_inbound(waha, alice, sender, body=f"unread {n}")

    async def unread(user: str) -> int | None:
        r = await gateway.get("/api/v1/waha/chats", headers=auth(user))
        return next((c["unreadCount"] for c in r.json()["items"] if c["chatId"] == chat), None)

    await wait_until(lambda: _is(unread(alice), 3), timeout=20, what="three unread")
    read = await gateway.post(f"/api/v1/waha/chats/{chat}/read", headers=auth(alice), json={})
    assert read.status_code == 200, read.text
    await wait_until(lambda: _is(unread(alice), 0), timeout=20, what="none unread after reading")
    assert await unread(bob) is None  # bob never had that chat

    for typing in (True, False):
        r = await gateway.post(f"/api/v1/waha/chats/{chat}/typing", headers=auth(alice), json={"typing": typing})
        assert r.status_code == 200, r.text
    actions = (await waha.get(f"/_emulator/sessions/{session_name_for(alice)}/actions")).json()
    assert [a["action"] for a in actions] == ["seen", "typing", "typing"]


async def _is(value, expected) -> bool:
    return await value == expected


async def test_messages_of_one_second_come_back_in_arrival_order(gateway, waha, pair):
    alice, _ = pair
    sender = "4915110000006"
    chat = f"{sender}@c.us"
    sent = []
    for n in range(25):
        sent.append((await send_inbound(waha, alice, sender, body=f"quick {n}"))["id"])
        await asyncio.sleep(0.02)

    async def all_there() -> list[str] | None:
        ids = [m["id"] for m in await messages(gateway, alice, chat)]
        return ids if len(ids) == 25 else None

    newest_first = await wait_until(all_there, timeout=20, what="25 messages")
    assert newest_first == list(reversed(sent))


async def _serve(path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    data = path.read_bytes()
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                 % len(data) + data)
    await writer.drain()
    writer.close()


class FileServer:
    """One file over HTTP on 127.0.0.1 (what a user's media URL points at in these tests)."""

    def __init__(self, path) -> None:
        self.path = path
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(lambda r, w: _serve(self.path, r, w), "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/{self.path.name}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
