"""Driving the running system from a test: connect users, play the phone, read what was stored and counted.

Everything here talks to the processes over their public interfaces (the gateway's API, the
emulator's WAHA and control API, RabbitMQ, the services' /metrics, MongoDB for what was stored).
"""

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage
from pymongo import AsyncMongoClient

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for
from fleet_shared.topology import Topology
from fleet_shared.waha import session_webhook
from local_launcher.stack import Stack

from .conftest import SECRETS, auth

DATABASE = "waha_fleet"
SERVICES = ("persister", "session-orchestrator", "webhook-ingest", "gateway", "webhook-dispatcher")


def unique_user(tag: str) -> str:
    return f"{tag}_{uuid.uuid4().hex[:8]}"


async def connect(gateway: httpx.AsyncClient, waha: httpx.AsyncClient, user: str, phone: str, timeout: float = 20) -> None:
    """The user asks for a QR, "scans" it with `phone`, and is WORKING."""
    r = await gateway.get("/api/v1/waha/qr", headers=auth(user))
    assert r.status_code == 200, r.text
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/scan", json={"phone": phone})
    assert r.status_code in (200, 201), r.text
    await until_working(gateway, user, timeout)


async def until_working(gateway: httpx.AsyncClient, user: str, timeout: float = 20) -> None:
    async def working() -> bool:
        r = await gateway.get("/api/v1/waha/status", headers=auth(user))
        return r.status_code == 200 and r.json()["status"] == "WORKING"

    await wait_until(working, timeout=timeout, what=f"{user} WORKING")


async def inbound(waha: httpx.AsyncClient, user: str, sender: str, body: str, raw_id: str | None = None) -> dict:
    """Someone writes to `user` on WhatsApp: the emulator sends WAHA's `message` and `message.any` webhooks."""
    payload: dict[str, Any] = {"from": sender, "body": body}
    if raw_id:
        payload["id"] = raw_id
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/inbound", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run the calls with at most `concurrency` in flight (a load loop that never floods loopback)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


def mongo(stack: Stack) -> AsyncMongoClient:
    return AsyncMongoClient(stack.env["MONGODB_URL"], serverSelectionTimeoutMS=3000)


async def stored_messages(client: AsyncMongoClient, user: str) -> list[dict]:
    """The user's message documents as the persister wrote them (stubs included)."""
    return await client[DATABASE]["messages"].find({"userId": user}, {"_id": 0}).to_list()


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The sum of a Prometheus sample `name` over the series whose labels include `labels`."""
    text = (await client.get("/metrics")).text
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def all_ready(stack: Stack) -> bool:
    async with httpx.AsyncClient(timeout=3) as client:
        for name in SERVICES:
            try:
                if (await client.get(f"{stack.url(name)}/readyz")).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    return True


def signed_for(session: str, body: bytes) -> tuple[str, dict[str, str]]:
    """Where WAHA posts `session`'s webhook `body`, and its headers, signed with the session's key."""
    return session_webhook(SECRETS["WEBHOOK_HMAC_KEY"], session, body)


def signed(envelope: dict) -> tuple[str, bytes, dict[str, str]]:
    """A webhook as WAHA posts it for its session: the path, the body, the signed headers."""
    body = json.dumps(envelope).encode()
    path, headers = signed_for(envelope["session"], body)
    return path, body, headers


def wa_message(raw_id: str, sender: str, body: str, *, timestamp: int = 1_700_000_000, to: str = "15550000000@c.us") -> dict:
    """WAHA's WAMessage of an incoming message from `sender` (digits)."""
    chat = f"{sender}@c.us"
    return {"id": f"false_{chat}_{raw_id}", "timestamp": timestamp, "from": chat, "to": to, "fromMe": False,
            "body": body, "hasMedia": False, "ack": 1}


async def deliver(ingest: httpx.AsyncClient, envelope: dict, *, attempts: int = 16, delay: float = 0.5) -> None:
    """POST a signed webhook the way WAHA does: the same body again after every failure, a bounded number of times."""
    path, body, headers = signed(envelope)
    for _ in range(attempts):
        try:
            if (await ingest.post(path, content=body, headers=headers)).is_success:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(delay)
    raise AssertionError(f"webhook {envelope['id']} not taken after {attempts} attempts")


def webhook(user: str, event: str, payload: dict, *, session: str | None = None, metadata_user: str | None = None) -> dict:
    """A WAHA webhook envelope for `user`'s session (or another `session` / metadata, to test refusals)."""
    return {
        "id": f"evt_{uuid.uuid4().hex[:26]}",
        "timestamp": int(time.time() * 1000),  # signed now: webhook-ingest refuses old ones (WEBHOOK_MAX_AGE)
        "event": event,
        "session": session or session_name_for(user),
        "metadata": {"fleet.userId": metadata_user or user},
        "me": None,
        "payload": payload,
        "engine": "NOWEB",
    }


class BusRecorder:
    """Copies of everything published on a system's exchanges (commands, queries, events, parked),
    on queues of the recorder's own (exclusive: gone with its connection)."""

    def __init__(self, url: str, topology: Topology) -> None:
        self._url = url
        self._exchanges = {topology.commands: "#", topology.queries: "#", topology.events: "#", topology.parked: ""}
        self.seen: list[AbstractIncomingMessage] = []
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def __aenter__(self) -> "BusRecorder":
        self._connection = await aio_pika.connect(self._url)
        channel = await self._connection.channel()
        for exchange, key in self._exchanges.items():
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(exchange, routing_key=key)
            await queue.consume(self._record, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _record(self, message: AbstractIncomingMessage) -> None:
        self.seen.append(message)

    def mentioning(self, text: str) -> list[AbstractIncomingMessage]:
        """Messages with `text` in their routing key, headers or body."""
        return [
            m for m in self.seen
            if text in (m.routing_key or "") or text in repr(m.headers) or text in m.body.decode(errors="replace")
        ]

    async def wait_for(self, text: str, timeout: float = 15) -> list[AbstractIncomingMessage]:
        async def seen() -> list[AbstractIncomingMessage]:
            return self.mentioning(text)

        return await wait_until(seen, timeout=timeout, what=f"a message mentioning {text!r} on the bus")


# ---- pairing by code and the history import (issue 18) --------------------------------------


def waha_api(stack: Stack) -> httpx.AsyncClient:
    """WAHA's own API (with its key): what WhatsApp has, to compare what waha-fleet imported with."""
    return httpx.AsyncClient(base_url=stack.waha_url, headers={"X-Api-Key": SECRETS["WAHA_API_KEY"]}, timeout=30)


async def pair_by_code(gateway: httpx.AsyncClient, waha: httpx.AsyncClient, user: str, phone: str,
                       history: dict | None = None, timeout: float = 20) -> None:
    """The user starts the session, asks for a pairing code, (WhatsApp syncs `history`,) types the
    code on the phone, and is WORKING."""
    r = await gateway.get("/api/v1/waha/qr", headers=auth(user))
    assert r.status_code == 200, r.text
    session = session_name_for(user)
    if history is not None:
        r = await waha.post(f"/_emulator/sessions/{session}/history", json=history)
        assert r.status_code == 201, r.text
    r = await gateway.post("/api/v1/waha/pairing-code", json={"phoneNumber": phone}, headers=auth(user))
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    r = await waha.post(f"/_emulator/sessions/{session}/pair", json={"code": code})
    assert r.status_code in (200, 201), r.text
    await until_working(gateway, user, timeout)


async def import_finished(gateway: httpx.AsyncClient, user: str, timeout: float = 60) -> dict:
    """Wait for the user's history import to be done (or failed); answers `historyImport`."""

    async def finished() -> dict | None:
        r = await gateway.get("/api/v1/waha/status", headers=auth(user))
        if r.status_code != 200:
            return None
        state = r.json()["historyImport"]
        return state if state["state"] in ("done", "failed") else None

    return await wait_until(finished, timeout=timeout, interval=0.3, what=f"{user}'s history import finished")


async def waha_history(waha_key: httpx.AsyncClient, user: str, per_chat: int = 50) -> dict[str, list[dict]]:
    """chatId -> the newest `per_chat` messages WAHA has for the user (as the import reads them)."""
    session = session_name_for(user)
    chats: dict[str, list[dict]] = {}
    offset = 0
    while True:
        r = await waha_key.get(f"/api/{session}/chats/overview", params={"limit": 100, "offset": offset, "merge": "false"})
        assert r.status_code == 200, r.text
        page = r.json()
        for chat in page:
            m = await waha_key.get(f"/api/{session}/chats/{chat['id']}/messages",
                                   params={"limit": per_chat, "downloadMedia": "false", "merge": "false"})
            assert m.status_code == 200, m.text
            chats[chat["id"]] = m.json()
        offset += len(page)
        if len(page) < 100:
            return chats
