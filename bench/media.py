"""6. Media: inbound 1 MB images, from the phone until each is stored, beside the raw copy they need.

The system: the whole stack as processes, 10 users connected first (QR, scanned, WORKING). A load
generator has the emulator receive N images of 1 MB (`POST /_emulator/sessions/{session}/inbound`,
type image, the bytes in base64: requests prepared before the clock starts, 8 in flight, round
robin over the users, one new chat each run), then reads the run's messages from MongoDB every
50 ms until all are `media.status: stored`. In between: WAHA's webhook → webhook-ingest →
`media.available` → the orchestrator downloads the file from WAHA (`/api/files/...`) and puts it
into GridFS → `message.media` → the persister marks the message stored. Rate: N over the time from
the first request to the read that saw the last one stored, in messages/s and MB/s (10^6 bytes).
The baseline, in the same run right after, in a process of its own: the same N files fetched from
the same emulator URLs with httpx and put into GridFS with PyMongo's `AsyncGridFSBucket` (the media
store's chunk size) on the same SecantusDB, as many at once as the orchestrator copies
(`MEDIA_PREFETCH`): the minimal work any implementation must do.
"""

import asyncio
import base64
import json
import os
import tempfile
import time
from collections import Counter

import httpx
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient

from fleet_shared.ids import session_name_for
from fleet_shared.media import BUCKET, CHUNK
from session_orchestrator.config import Settings as OrchestratorSettings

from . import payloads
from .common import SECRETS, Context, Row, fresh_prefix, run_loadgen, scratch_database, whole_system
from .gateway import connect_users
from .http1 import Connection, json_request

USERS = 10
SIZE = 1_000_000
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
IN_FLIGHT = 8  # images the phone side sends at once
POLL = 0.05
DEADLINE = 120.0  # well within WAHA's files lifetime (180 s): the baseline fetches the same files after
COPIES_AT_ONCE = OrchestratorSettings.model_fields["media_prefetch"].default


def _inbound(spec: dict, i: int) -> bytes:
    """The emulator's inbound request of image `i`: 1 MB, random after a JPEG signature."""
    user = spec["users"][i % len(spec["users"])]
    raw_id = f"{spec['tag']}{i:05d}"
    data = JPEG + os.urandom(SIZE - len(JPEG))
    body = {"from": spec["sender"], "type": "image", "id": raw_id,
            "media": {"mimetype": "image/jpeg", "filename": f"{raw_id}.jpg", "data": base64.b64encode(data).decode()}}
    return json_request("POST", f"/_emulator/sessions/{session_name_for(user)}/inbound", spec["waha_port"], body)


async def drive(spec: dict) -> dict:
    """The system: the images received, then MongoDB read until every one is stored (or failed)."""
    requests = iter([_inbound(spec, i) for i in range(spec["count"])])
    urls: list[str] = []
    client = AsyncMongoClient(spec["mongodb_url"])
    messages = client[spec["database"]]["messages"]

    async def phone() -> None:
        conn = Connection(spec["waha_port"])
        for raw in requests:  # shared: each request is sent once, by whichever sender is free
            status, body = await conn.request(raw)
            if status != 201:
                raise RuntimeError(f"the emulator answered {status}: {body[:300]!r}")
            urls.append(json.loads(body)["media"]["url"])
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(phone() for _ in range(IN_FLIGHT)))
    sent = time.perf_counter()
    statuses: Counter = Counter()
    while time.perf_counter() - start < DEADLINE:
        cursor = messages.find({"chatId": f"{spec['sender']}@c.us"}, {"media.status": 1})
        statuses = Counter([(doc.get("media") or {}).get("status") async for doc in cursor])
        if statuses["stored"] + statuses["failed"] >= spec["count"]:
            break
        await asyncio.sleep(POLL)
    seconds = time.perf_counter() - start
    await client.close()
    return {"seconds": seconds, "send_seconds": sent - start, "stored": statuses["stored"],
            "failed": statuses["failed"], "urls": urls}


async def raw_copy(spec: dict) -> dict:
    """Baseline: each file GET from the emulator with httpx, its bytes put into GridFS."""
    client = AsyncMongoClient(spec["mongodb_url"])
    bucket = AsyncGridFSBucket(client[spec["database"]], bucket_name=BUCKET, chunk_size_bytes=CHUNK)
    gate = asyncio.Semaphore(spec["at_once"])
    copied = 0
    async with httpx.AsyncClient(headers={"X-Api-Key": spec["api_key"]}, timeout=30) as http:

        async def copy(i: int, url: str) -> None:
            nonlocal copied
            async with gate:
                answer = await http.get(url)
                answer.raise_for_status()
                await bucket.upload_from_stream_with_id(f"raw/{i}", f"raw/{i}", answer.content,
                                                        metadata={"mimetype": answer.headers["content-type"]})
                copied += len(answer.content)

        start = time.perf_counter()
        await asyncio.gather(*(copy(i, url) for i, url in enumerate(spec["urls"])))
        seconds = time.perf_counter() - start
    await client.close()
    return {"seconds": seconds, "bytes": copied}


def _run_once(spec: dict, media_db: str, count: int, tag: str, sender: str) -> tuple[dict, dict]:
    """The system's images, then the baseline's copies of the same files, each into an empty store:
    on SecantusDB a GridFS put costs more the more is stored (PyMongo's per-upload index check,
    `find_one` on the chunks, reads all of them there), so neither side may inherit the other's
    files, nor a run those of the run before (the system's media database is dropped after it)."""
    with scratch_database(spec["mongodb_url"], media_db):
        s = run_loadgen("bench.media:drive", {**spec, "count": count, "tag": tag, "sender": sender})
    with scratch_database(spec["mongodb_url"], fresh_prefix("mediaraw")) as raw_db:
        b = run_loadgen("bench.media:raw_copy", {"urls": s["urls"], "mongodb_url": spec["mongodb_url"],
                                                  "database": raw_db, "api_key": SECRETS["WAHA_API_KEY"],
                                                  "at_once": COPIES_AT_ONCE})
    return s, b


def run(ctx: Context) -> list[Row]:
    count = ctx.n(100, 20)
    users = payloads.users("media", USERS)
    rates, base_rates, mbs, base_mbs, notes = [], [], [], [], []
    # On disk: in memory, SecantusDB must hold every file (and its oplog entries) in its cache, which
    # a full run outgrows (WT_CACHE_FULL); MongoDB keeps files on disk too.
    with tempfile.TemporaryDirectory(prefix="bench-media-db-") as storage, \
            whole_system(ctx, "media", mongo_storage=storage) as system:
        ctx.say(f"  connecting {USERS} users")
        asyncio.run(connect_users(system.url("gateway"), system.waha_url, users))
        spec = {"waha_port": system.config.ports["waha-emulator"], "users": users,
                "mongodb_url": system.env["MONGODB_URL"], "database": system.config.env["MONGODB_DATABASE"]}
        media_db = system.config.env["MEDIA_DATABASE"]
        # Once untimed: connections and every user's path are warm for both sides.
        _run_once(spec, media_db, USERS, "warm", payloads.sender_of(999))
        for i in range(ctx.runs):
            ctx.say(f"  media run {i + 1}/{ctx.runs}: {count} images of {SIZE / 1e6:.0f} MB")
            s, b = _run_once(spec, media_db, count, f"m{i}", payloads.sender_of(i))
            done = s["stored"] == count
            rates.append(count / s["seconds"] if done else None)
            mbs.append(count * SIZE / 1e6 / s["seconds"] if done else None)
            base_rates.append(len(s["urls"]) / b["seconds"])
            base_mbs.append(b["bytes"] / 1e6 / b["seconds"])
            if not done:
                notes.append(f"run {i + 1}: {s['stored']} of {count} stored, {s['failed']} failed within "
                             f"{DEADLINE:.0f} s (no figure)")
            ctx.say(f"    {count} stored in {s['seconds']:.2f} s (sent in {s['send_seconds']:.2f} s): "
                    f"{_figure(rates[-1], '/s')}, {_figure(mbs[-1], 'MB/s')}; raw {base_rates[-1]:.1f}/s, "
                    f"{base_mbs[-1]:.1f} MB/s")
    raw = f"httpx GET of the emulator's file + AsyncGridFSBucket put, {COPIES_AT_ONCE} at once"
    what = f"inbound 1 MB images, received → stored ({count}, {USERS} users)"
    return [
        Row("6. Media", f"{what}: messages/s", "/s", rates, base_rates, raw, note="; ".join(notes)),
        Row("6. Media", f"{what}: MB/s", "MB/s", mbs, base_mbs, raw),
    ]


def _figure(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.1f} {unit}"
