import re

import pytest

from waha_emulator.testing import wait_until


async def test_create_without_name_generates_one_and_start_defaults_to_false(emu) -> None:
    r = await emu.client.post("/api/sessions", json={})
    assert r.status_code == 201
    info = r.json()
    assert re.fullmatch(r"session_[0-9a-z]{26}", info["name"])
    assert info["status"] == "STOPPED"
    assert info["engine"] == {"engine": "NOWEB"}
    assert info["assignedWorker"] is None
    assert info["me"] is None
    assert set(info["timestamps"]) == {"activity"}


async def test_session_info_echoes_config_with_nulls(emu, receiver) -> None:
    r = await emu.create("info1", url=receiver.url, start=False, metadata={"user.id": "42"})
    config = r.json()["config"]
    assert config["metadata"] == {"user.id": "42"}
    assert config["webhooks"] == [
        {"url": receiver.url, "events": ["*"], "hmac": None, "retries": None, "customHeaders": None}
    ]
    assert (await emu.client.get("/api/sessions/info1")).json()["config"] == config


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "bad name"}, "name must match"),
        ({"name": "a.b"}, "name must match"),
        ({"name": "x" * 55}, "shorter than or equal to 54"),
        ({"name": "ok", "config": {"metadata": {"n": 1}}}, "config.metadata"),
        ({"name": "ok", "config": {"webhooks": [{"url": "http://h/x", "events": ["nope"]}]}}, "events must be one of"),
        ({"name": "ok", "config": {"webhooks": [{"url": "not a url", "events": ["*"]}]}}, "url must be a URL"),
        ({"name": "ok", "start": "yes"}, "start must be a boolean"),
    ],
)
async def test_validation_errors_are_400_with_message_array(emu, body, fragment) -> None:
    r = await emu.client.post("/api/sessions", json=body)
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["statusCode"] == 400 and data["error"] == "Bad Request"
    assert isinstance(data["message"], list)
    assert any(fragment in m for m in data["message"]), data
    assert (await emu.client.get("/api/sessions/ok")).status_code == 404


async def test_name_of_54_chars_and_wildcard_events_are_fine(emu) -> None:
    r = await emu.client.post("/api/sessions", json={
        "name": "a" * 54, "config": {"webhooks": [{"url": "http://localhost:1/x", "events": ["*", "message"]}]}})
    assert r.status_code == 201, r.text


async def test_create_existing_is_422(emu) -> None:
    assert (await emu.create("dup", start=False)).status_code == 201
    r = await emu.create("dup", start=False)
    assert r.status_code == 422
    assert r.json() == {"message": "Session 'dup' already exists. Use PUT to update it.",
                        "error": "Unprocessable Entity", "statusCode": 422}


async def test_unknown_session_is_404(emu) -> None:
    for method, path in [("GET", "/api/sessions/ghost"), ("PUT", "/api/sessions/ghost"),
                         ("POST", "/api/sessions/ghost/start"), ("POST", "/api/sessions/ghost/logout"),
                         ("GET", "/api/sessions/ghost/me")]:
        r = await emu.client.request(method, path, json={} if method == "PUT" else None)
        assert r.status_code == 404, (method, path)
        assert r.json() == {"message": "Session not found", "error": "Not Found", "statusCode": 404}


async def test_list_omits_stopped_unless_all(emu) -> None:
    await emu.create("stopped1", start=False)
    await emu.create("running1", start=True)
    names = {s["name"] for s in (await emu.client.get("/api/sessions")).json()}
    assert names == {"running1"}
    names = {s["name"] for s in (await emu.client.get("/api/sessions", params={"all": "true"})).json()}
    assert names == {"stopped1", "running1"}


async def test_delete_is_idempotent(emu) -> None:
    await emu.create("gone", start=True)
    assert (await emu.client.delete("/api/sessions/gone")).status_code == 200
    assert (await emu.client.get("/api/sessions/gone")).status_code == 404
    assert (await emu.client.delete("/api/sessions/gone")).status_code == 200
    assert (await emu.client.delete("/api/sessions/never-existed")).status_code == 200


async def test_start_is_idempotent_and_goes_to_qr(emu, receiver) -> None:
    await emu.create("s1", url=receiver.url, start=False, events=["session.status"])
    assert (await emu.client.post("/api/sessions/s1/start")).json()["status"] == "STARTING"
    await emu.wait_status("s1", "SCAN_QR_CODE")
    assert (await emu.client.post("/api/sessions/s1/start")).json()["status"] == "SCAN_QR_CODE"
    await receiver.wait_for_event("session.status", lambda e: e["payload"]["status"] == "SCAN_QR_CODE")
    assert receiver.statuses()[:2] == ["STARTING", "SCAN_QR_CODE"]


async def test_stop_keeps_link_so_start_skips_qr(emu, receiver) -> None:
    await emu.link("linked", url=receiver.url, events=["session.status"])
    me = (await emu.client.get("/api/sessions/linked/me")).json()
    assert me == {"id": "15550001111@c.us", "pushName": "linked"}

    stopped = (await emu.client.post("/api/sessions/linked/stop")).json()
    assert stopped["status"] == "STOPPED"
    assert (await emu.client.post("/api/sessions/linked/stop")).status_code == 201  # idempotent
    assert (await emu.client.get("/api/sessions/linked/me")).json() is None

    await emu.client.post("/api/sessions/linked/start")
    await emu.wait_status("linked", "WORKING")
    await wait_until(lambda: len(receiver.statuses()) >= 6, message="six status webhooks")
    assert receiver.statuses() == ["STARTING", "SCAN_QR_CODE", "WORKING", "STOPPED", "STARTING", "WORKING"]
    r = await emu.client.get("/api/linked/auth/qr", params={"format": "raw"})
    assert r.status_code == 422


async def test_logout_unlinks_and_shows_a_new_qr(emu) -> None:
    await emu.link("out")
    r = await emu.client.post("/api/sessions/out/logout")
    assert r.status_code == 201
    await emu.wait_status("out", "SCAN_QR_CODE")
    assert (await emu.client.get("/api/sessions/out")).json()["me"] is None
    assert (await emu.qr_value("out")).startswith("2@")


async def test_logout_of_stopped_session_stays_stopped_and_unlinked(emu) -> None:
    await emu.link("out2")
    await emu.client.post("/api/sessions/out2/stop")
    assert (await emu.client.post("/api/sessions/out2/logout")).json()["status"] == "STOPPED"
    await emu.client.post("/api/sessions/out2/start")
    await emu.wait_status("out2", "SCAN_QR_CODE")


async def test_restart_and_put_replace_config(emu, receiver) -> None:
    await emu.link("put1", metadata={"a": "1"})
    r = await emu.client.put("/api/sessions/put1", json={"config": {
        "webhooks": [{"url": receiver.url, "events": ["session.status"]}]}})
    assert r.status_code == 200
    assert r.json()["config"]["metadata"] is None  # replaced, not merged
    await emu.wait_status("put1", "WORKING")  # restarted and still linked
    await receiver.wait_for_event("session.status", lambda e: e["payload"]["status"] == "WORKING")
    assert receiver.statuses() == ["STARTING", "WORKING"]

    r = await emu.client.post("/api/sessions/put1/restart")
    assert r.json()["status"] == "STARTING"
    await emu.wait_status("put1", "WORKING")


async def test_status_payload_carries_last_three_statuses(emu, receiver) -> None:
    await emu.link("hist", url=receiver.url, events=["session.status"])
    working = await receiver.wait_for_event("session.status", lambda e: e["payload"]["status"] == "WORKING")
    payload = working["payload"]
    assert payload["name"] == "hist" and payload["data"] is None
    assert [s["status"] for s in payload["statuses"]] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    assert all(isinstance(s["timestamp"], int) and s["timestamp"] > 10**12 for s in payload["statuses"])
    assert working["me"] == {"id": "15550001111@c.us", "pushName": "hist"}


async def test_disconnect_fails_the_session_and_unlinks(emu, receiver) -> None:
    await emu.link("disc", url=receiver.url, events=["session.status"])
    r = await emu.client.post("/_emulator/sessions/disc/disconnect")
    assert r.status_code == 201
    assert r.json()["status"] == "FAILED" and r.json()["me"] is None
    failed = await receiver.wait_for_event("session.status", lambda e: e["payload"]["status"] == "FAILED")
    assert failed["me"] is None
    # FAILED needs an explicit restart; start is a no-op
    assert (await emu.client.post("/api/sessions/disc/start")).json()["status"] == "FAILED"
    await emu.client.post("/api/sessions/disc/restart")
    await emu.wait_status("disc", "SCAN_QR_CODE")


async def test_scan_outside_scan_qr_code_is_409(emu) -> None:
    await emu.create("noscan", start=False)
    r = await emu.client.post("/_emulator/sessions/noscan/scan", json={})
    assert r.status_code == 409
    assert r.json()["status"] == "STOPPED"
    assert (await emu.client.post("/_emulator/sessions/ghost/scan", json={})).status_code == 404
