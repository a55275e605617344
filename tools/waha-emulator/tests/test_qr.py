import base64

from waha_emulator.testing import wait_until

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def test_qr_formats(emu) -> None:
    await emu.create("qr1")
    await emu.wait_status("qr1", "SCAN_QR_CODE")
    r = await emu.client.get("/api/qr1/auth/qr")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(PNG_MAGIC)

    r = await emu.client.get("/api/qr1/auth/qr", params={"format": "image"}, headers={"Accept": "application/json"})
    assert r.status_code == 200
    body = r.json()
    assert body["mimetype"] == "image/png"
    assert base64.b64decode(body["data"]).startswith(PNG_MAGIC)

    # only the exact Accept value switches to JSON
    r = await emu.client.get("/api/qr1/auth/qr", headers={"Accept": "application/json, text/plain"})
    assert r.content.startswith(PNG_MAGIC)

    value = await emu.qr_value("qr1")
    assert value.startswith("2@") and ",qr1," in value


async def test_two_sessions_have_different_qr_values(emu) -> None:
    await emu.create("qa")
    await emu.create("qb")
    await emu.wait_status("qa", "SCAN_QR_CODE")
    await emu.wait_status("qb", "SCAN_QR_CODE")
    assert await emu.qr_value("qa") != await emu.qr_value("qb")


async def test_qr_rotates_then_session_fails(emu, receiver) -> None:
    await emu.create("rot", url=receiver.url, events=["session.status"])
    await emu.wait_status("rot", "SCAN_QR_CODE")
    seen = [await emu.qr_value("rot")]

    async def rotated() -> bool:
        r = await emu.client.get("/api/rot/auth/qr", params={"format": "raw"})
        if r.status_code == 200 and r.json()["value"] not in seen:
            seen.append(r.json()["value"])
        return len(seen) == 3

    await wait_until(rotated, 5, message="3 QR values")
    await emu.wait_status("rot", "FAILED", timeout=5)
    # qr_count=3: three SCAN_QR_CODE events, then FAILED
    await wait_until(lambda: "FAILED" in receiver.statuses(), message="FAILED webhook")
    assert receiver.statuses() == ["STARTING", "SCAN_QR_CODE", "SCAN_QR_CODE", "SCAN_QR_CODE", "FAILED"]
    assert len(set(seen)) == 3
    assert [v.rsplit(",", 1)[1] for v in seen] == ["1", "2", "3"]


async def test_qr_when_not_in_scan_state_is_422_object(emu) -> None:
    await emu.link("qw")
    r = await emu.client.get("/api/qw/auth/qr")
    assert r.status_code == 422
    assert r.json() == {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": "qw", "status": "WORKING", "expected": ["SCAN_QR_CODE"],
    }


async def test_qr_waits_for_the_status(emu) -> None:
    await emu.create("qwait")
    # straight after start the session is STARTING: the call waits for the QR
    r = await emu.client.get("/api/qwait/auth/qr", params={"format": "raw"})
    assert r.status_code == 200


async def test_qr_of_unknown_session_is_404(emu) -> None:
    r = await emu.client.get("/api/ghost/auth/qr")
    assert r.status_code == 404
    assert r.json() == {"message": "Session not found", "error": "Not Found", "statusCode": 404}


async def test_qr_bad_format_is_400(emu) -> None:
    await emu.create("qf", start=False)
    r = await emu.client.get("/api/qf/auth/qr", params={"format": "svg"})
    assert r.status_code == 400
