import re


async def test_pairing_by_phone_number(emu, receiver) -> None:
    await emu.create("pc", url=receiver.url, events=["session.status"])
    await emu.wait_status("pc", "SCAN_QR_CODE")
    r = await emu.client.post("/api/pc/auth/request-code", json={"phoneNumber": "+4915112345678"})
    assert r.status_code == 201
    code = r.json()["code"]
    assert re.fullmatch(r"[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}", code)
    assert (await emu.client.get("/_emulator/sessions/pc")).json()["pairingCode"] == code

    r = await emu.client.post("/_emulator/sessions/pc/pair", json={"code": code, "pushName": "Jo"})
    assert r.status_code == 201
    assert r.json()["status"] == "WORKING"
    assert (await emu.client.get("/api/sessions/pc/me")).json() == {"id": "4915112345678@c.us", "pushName": "Jo"}
    working = await receiver.wait_for_event("session.status", lambda e: e["payload"]["status"] == "WORKING")
    assert working["me"]["id"] == "4915112345678@c.us"
    # paired: a restart needs no QR, and no code can be asked for
    r = await emu.client.post("/api/pc/auth/request-code", json={"phoneNumber": "4915112345678"})
    assert r.status_code == 422
    assert r.json() == {"message": "Can request code only in SCAN_QR_CODE status. The current status is WORKING",
                        "error": "Unprocessable Entity", "statusCode": 422}


async def test_only_the_last_code_pairs(emu) -> None:
    await emu.create("pc2")
    await emu.wait_status("pc2", "SCAN_QR_CODE")
    first = (await emu.client.post("/api/pc2/auth/request-code", json={"phoneNumber": "4915100000001"})).json()["code"]
    second = (await emu.client.post("/api/pc2/auth/request-code", json={"phoneNumber": "4915100000002"})).json()["code"]
    if first != second:
        r = await emu.client.post("/_emulator/sessions/pc2/pair", json={"code": first})
        assert r.status_code == 422 and r.json()["session"] == "pc2"
    assert (await emu.client.post("/_emulator/sessions/pc2/pair", json={"code": "ZZZZ-ZZZ1"})).status_code == 422
    r = await emu.client.post("/_emulator/sessions/pc2/pair", json={"code": second.replace("-", "").lower()})
    assert r.status_code == 201
    assert (await emu.client.get("/api/sessions/pc2/me")).json()["id"] == "4915100000002@c.us"
    # WORKING now: the phone cannot enter a code
    assert (await emu.client.post("/_emulator/sessions/pc2/pair", json={"code": second})).status_code == 409


async def test_request_code_errors(emu) -> None:
    assert (await emu.client.post("/api/nosuch/auth/request-code", json={"phoneNumber": "1"})).status_code == 404
    await emu.create("pc3", start=False)
    r = await emu.client.post("/api/pc3/auth/request-code", json={"phoneNumber": "1"})
    assert r.status_code == 422 and "The current status is STOPPED" in r.json()["message"]
    await emu.client.post("/api/sessions/pc3/start")
    await emu.wait_status("pc3", "SCAN_QR_CODE")
    r = await emu.client.post("/api/pc3/auth/request-code", json={"phoneNumber": "1", "method": "sms"})
    assert r.status_code == 422
    assert r.json()["message"] == "NOWEB engine doesn't support any 'method', remove it and try again"
    assert (await emu.client.post("/api/pc3/auth/request-code", json={})).status_code == 400
    assert (await emu.client.post("/_emulator/sessions/pc3/pair", json={"code": "AAAA-AAAA"})).status_code == 422


async def test_request_code_waits_out_starting(make_emu) -> None:
    emu = make_emu(starting_delay=0.2, qr_wait_timeout=2)
    await emu.create("pc4")
    r = await emu.client.post("/api/pc4/auth/request-code", json={"phoneNumber": "4915100000004"})
    assert r.status_code == 201


async def test_a_code_dies_with_its_qr_phase(make_emu) -> None:
    emu = make_emu(qr_count=1, qr_first_lifetime=0.3)
    await emu.create("pc5")
    await emu.wait_status("pc5", "SCAN_QR_CODE")
    code = (await emu.client.post("/api/pc5/auth/request-code", json={"phoneNumber": "4915100000005"})).json()["code"]
    await emu.wait_status("pc5", "FAILED")
    assert (await emu.client.get("/_emulator/sessions/pc5")).json()["pairingCode"] is None
    await emu.client.post("/api/sessions/pc5/restart")
    await emu.wait_status("pc5", "SCAN_QR_CODE")
    assert (await emu.client.post("/_emulator/sessions/pc5/pair", json={"code": code})).status_code == 422
