import json

from waha_emulator.testing import wait_until


async def test_linked_session_comes_back_working_without_qr(make_emu, receiver, tmp_path) -> None:
    state = tmp_path / "state.json"
    first = make_emu(state_file=state)
    await first.link("keep", phone="15551230000", url=receiver.url, events=["session.status"],
                     metadata={"user.id": "7"})
    await first.create("idle", start=False)
    await first.create("pending")  # running but never scanned
    await first.wait_status("pending", "SCAN_QR_CODE")
    saved = {s["name"]: s for s in json.loads(state.read_text())["sessions"]}
    assert saved["keep"]["me"]["id"] == "15551230000@c.us" and saved["keep"]["running"] is True
    assert saved["idle"]["running"] is False
    await first.aclose()  # the process goes away; the file stays

    receiver.requests.clear()
    second = make_emu(state_file=state)
    await second.wait_status("keep", "WORKING")
    await second.wait_status("pending", "SCAN_QR_CODE")
    assert await second.status("idle") == "STOPPED"
    info = (await second.client.get("/api/sessions/keep")).json()
    assert info["me"]["id"] == "15551230000@c.us"
    assert info["config"]["metadata"] == {"user.id": "7"}
    await wait_until(lambda: "WORKING" in receiver.statuses("keep"), message="WORKING webhook")
    assert receiver.statuses("keep") == ["STARTING", "WORKING"]


async def test_deleted_session_is_gone_after_restart(make_emu, tmp_path) -> None:
    state = tmp_path / "state.json"
    first = make_emu(state_file=state)
    await first.create("tmp", start=False)
    await first.client.delete("/api/sessions/tmp")
    await first.aclose()
    second = make_emu(state_file=state)
    assert (await second.client.get("/api/sessions/tmp")).status_code == 404


async def test_no_restart_sessions(make_emu, tmp_path) -> None:
    state = tmp_path / "state.json"
    first = make_emu(state_file=state)
    await first.link("norestart")
    await first.aclose()
    second = make_emu(state_file=state, restart_sessions=False)
    assert await second.status("norestart") == "STOPPED"
