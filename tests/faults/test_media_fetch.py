"""Issue 17: copying a media file out of WAHA survives WAHA failing. The file fetch fails twice,
then succeeds: the file is stored once, whole, and the user downloads it; a file WAHA lets expire
before it could be copied is `failed` with why, and the user's retry brings it back."""

import base64
import hashlib

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..helpers import auth, connect, mongo, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

PHOTO = bytes(range(256)) * 1024  # 256 KiB
SENDER = "4915400000077"
CHAT = f"{SENDER}@c.us"


async def inbound_photo(waha, user: str) -> dict:
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/inbound", json={
        "from": SENDER, "type": "image", "caption": "for you",
        "media": {"mimetype": "image/jpeg", "filename": "p.jpg", "data": base64.b64encode(PHOTO).decode()},
    })
    assert r.status_code == 201, r.text
    return r.json()


async def media_of(gateway, user: str, message_id: str) -> dict | None:
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": CHAT}, headers=auth(user))
    found = next((m for m in r.json()["items"] if m["id"] == message_id), None)
    return found["media"] if found else None


async def test_a_fetch_that_fails_twice_then_succeeds_stores_the_file_once(stack, gateway, waha):
    user = unique_user("media")
    await connect(gateway, waha, user, "15554000077")
    r = await waha.post("/_emulator/faults", json={"status": 500, "paths": ["/api/files/"], "times": 2})
    assert r.status_code == 201, r.text

    message = await inbound_photo(waha, user)

    async def stored() -> bool:
        media = await media_of(gateway, user, message["id"])
        return bool(media) and media["status"] == "stored"

    await wait_until(stored, timeout=30, what="the photo stored after two failed fetches")
    downloads = [c for c in (await waha.get("/_emulator/calls")).json()
                 if c["path"].startswith(f"/api/files/{session_name_for(user)}/")]
    assert [c["status"] for c in downloads][:3] == [500, 500, 200]
    client = mongo(stack)
    try:
        files = await client["waha_fleet_media"]["media.files"].find({"_id": {"$regex": f"^messages/{user}/"}}).to_list()
    finally:
        await client.close()
    assert len(files) == 1 and files[0]["length"] == len(PHOTO)
    got = await gateway.get(f"/api/v1/waha/messages/{message['id']}/media", headers=auth(user))
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(PHOTO).digest()


async def test_a_file_waha_never_served_is_failed_with_why_and_the_users_retry_copies_it(stack, gateway, waha):
    user = unique_user("media")
    await connect(gateway, waha, user, "15554000078")
    # Every fetch fails for longer than the orchestrator tries (FAULT_SETTINGS: 4 attempts within seconds).
    assert (await waha.post("/_emulator/faults", json={"status": 500, "paths": ["/api/files/"], "times": 20})).status_code == 201

    message = await inbound_photo(waha, user)

    async def failed() -> dict | None:
        media = await media_of(gateway, user, message["id"])
        return media if media and media["status"] == "failed" else None

    media = await wait_until(failed, timeout=60, what="the photo failed")
    assert "500" in media["error"]
    not_yet = await gateway.get(f"/api/v1/waha/messages/{message['id']}/media", headers=auth(user))
    assert (not_yet.status_code, not_yet.json()["error"]["code"]) == (409, "media_not_stored")

    assert (await waha.post("/_emulator/faults", json={})).status_code == 201
    retried = await gateway.post(f"/api/v1/waha/messages/{message['id']}/media/retry", headers=auth(user))
    assert retried.status_code == 202, retried.text

    async def stored() -> bool:
        again = await media_of(gateway, user, message["id"])
        return bool(again) and again["status"] == "stored"

    await wait_until(stored, timeout=30, what="the photo stored after the retry")
    got = await gateway.get(f"/api/v1/waha/messages/{message['id']}/media", headers=auth(user))
    assert got.content == PHOTO
