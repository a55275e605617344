import pytest

from waha_emulator.errors import STORE_DISABLED

NO_STORE = {"noweb": {"store": {"enabled": False}}}
STORE = {"noweb": {"store": {"enabled": True, "fullSync": False}}}


async def create(emu, name: str, config: dict) -> None:
    r = await emu.client.post("/api/sessions", json={"name": name, "start": True, "config": config})
    assert r.status_code == 201, r.text


def is_store_error(r) -> bool:
    return r.status_code == 400 and r.json() == {"message": STORE_DISABLED, "error": "Bad Request", "statusCode": 400}


async def test_without_the_store_noweb_refuses_store_reads(emu) -> None:
    await create(emu, "nost", NO_STORE)
    await emu.link("nost")
    msg = (await emu.client.post("/_emulator/sessions/nost/inbound", json={"from": "4917", "body": "x"})).json()
    assert is_store_error(await emu.client.get("/api/nost/chats"))
    assert is_store_error(await emu.client.get(f"/api/nost/chats/4917@c.us/messages/{msg['id']}"))
    # NowebInMemoryStore still lists the messages it saw since the engine started
    listed = (await emu.client.get("/api/nost/chats/4917@c.us/messages", params={"limit": 5})).json()
    assert [m["id"] for m in listed] == [msg["id"]]
    # ...until the engine starts again
    await emu.client.post("/api/sessions/nost/restart")
    await emu.wait_status("nost", "WORKING")
    assert (await emu.client.get("/api/nost/chats/4917@c.us/messages")).json() == []
    # the message lookup the orchestrator's send recovery uses fails the same way
    r = await emu.client.get(f"/api/nost/chats/4917@c.us/messages/{msg['id']}", params={"downloadMedia": "false"})
    assert is_store_error(r)


async def test_with_the_store_reads_survive_a_restart_and_a_put(emu) -> None:
    await create(emu, "st", STORE)
    await emu.link("st", phone="15550007777")
    await emu.client.post("/_emulator/sessions/st/inbound", json={"from": "4917", "body": "kept"})
    r = await emu.client.put("/api/sessions/st", json={"config": {**STORE, "webhooks": [
        {"url": "http://127.0.0.1:9/x", "events": ["message.reaction", "message.edited", "message.revoked",
                                                    "group.v2.join", "group.v2.leave", "group.v2.update",
                                                    "group.v2.participants", "presence.update"]}]}})
    assert r.status_code == 200, r.text
    await emu.wait_status("st", "WORKING")  # restarted, still paired: no QR
    assert (await emu.client.get("/api/sessions/st/me")).json()["id"] == "15550007777@c.us"
    chats = (await emu.client.get("/api/st/chats")).json()
    assert [c["id"] for c in chats] == ["4917@c.us"]
    assert set(chats[0]) == {"id", "name", "conversationTimestamp"}  # NOWEB drops unreadCount


@pytest.mark.parametrize("default", [True, False])
async def test_store_default_applies_when_the_config_is_silent(make_emu, default) -> None:
    emu = make_emu(store_default=default)
    await emu.link("dflt")
    r = await emu.client.get("/api/dflt/chats")
    assert (r.status_code == 200) is default
    await create(emu, "explicit", STORE if not default else NO_STORE)
    await emu.link("explicit")
    assert ((await emu.client.get("/api/explicit/chats")).status_code == 200) is not default
    inspect = (await emu.client.get("/_emulator/sessions/dflt")).json()
    assert inspect["store"] is default


async def test_logout_clears_the_store(emu) -> None:
    await emu.link("lo")
    await emu.client.post("/_emulator/sessions/lo/inbound", json={"from": "4917", "body": "x"})
    await emu.client.post("/api/sessions/lo/logout")
    await emu.wait_status("lo", "SCAN_QR_CODE")
    await emu.client.post("/_emulator/sessions/lo/scan", json={})
    await emu.wait_status("lo", "WORKING")
    assert (await emu.client.get("/api/lo/chats")).json() == []


async def test_message_list_filters_and_paging(emu) -> None:
    await emu.link("flt")
    for body in ("a", "b", "c"):
        await emu.client.post("/_emulator/sessions/flt/inbound", json={"from": "4917", "body": body})
    await emu.client.post("/api/sendText", json={"session": "flt", "chatId": "4917", "text": "d"})
    base = "/api/flt/chats/4917@c.us/messages"
    bodies = lambda r: [m["body"] for m in r.json()]  # noqa: E731
    assert bodies(await emu.client.get(base, params={"limit": 10})) == ["d", "c", "b", "a"]
    assert bodies(await emu.client.get(base, params={"limit": 2, "offset": 1})) == ["c", "b"]
    assert bodies(await emu.client.get(base, params={"limit": 10, "sortOrder": "asc"})) == ["a", "b", "c", "d"]
    assert bodies(await emu.client.get(base, params={"limit": 10, "filter.fromMe": "false"})) == ["c", "b", "a"]
    assert bodies(await emu.client.get(base, params={"limit": 10, "filter.ack": "DEVICE"}))[:3] == ["c", "b", "a"]
    assert bodies(await emu.client.get(base, params={"limit": 10, "filter.timestamp.gte": 4_000_000_000})) == []
    assert bodies(await emu.client.get("/api/flt/chats/all/messages", params={"limit": 1})) == ["d"]
    for bad in ({"limit": "x"}, {"sortOrder": "up"}, {"filter.ack": "SEEN"}, {"filter.fromMe": "yes"},
                {"sortBy": "body"}, {"downloadMedia": "1"}):
        assert (await emu.client.get(base, params=bad)).status_code == 400, bad
