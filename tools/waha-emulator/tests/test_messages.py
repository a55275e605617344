import re

from waha_emulator.testing import wait_until


async def test_send_needs_working_session(emu) -> None:
    await emu.create("notyet")
    await emu.wait_status("notyet", "SCAN_QR_CODE")
    r = await emu.client.post("/api/sendText", json={"session": "notyet", "chatId": "123", "text": "hi"})
    assert r.status_code == 422
    assert r.json() == {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": "notyet", "status": "SCAN_QR_CODE", "expected": ["WORKING"],
    }
    assert "statusCode" not in r.json()


async def test_send_to_unknown_session_is_422_does_not_exist(emu) -> None:
    r = await emu.client.post("/api/sendText", json={"session": "x", "chatId": "123", "text": "hi"})
    assert r.status_code == 422
    assert r.json() == {"error": 'Session "x" does not exist', "session": "x"}


async def test_send_text_answer_sent_log_and_webhooks(emu, receiver) -> None:
    await emu.link("snd", phone="15550009999", url=receiver.url, events=["message", "message.any", "message.ack"])
    r = await emu.client.post("/api/sendText", json={"session": "snd", "chatId": "4915112345678", "text": "hello"})
    assert r.status_code == 201
    body = r.json()
    assert re.fullmatch(r"true_4915112345678@c\.us_[0-9A-F]+", body["id"])
    assert body["fromMe"] is True
    assert body["from"] == "15550009999@c.us" and body["to"] == "4915112345678@c.us"
    assert body["body"] == "hello"
    assert isinstance(body["timestamp"], int) and body["timestamp"] < 10**11  # seconds
    assert "_data" in body

    sent = (await emu.client.get("/_emulator/sessions/snd/sent")).json()
    assert [(m["id"], m["chatId"], m["text"]) for m in sent] == [(body["id"], "4915112345678@c.us", "hello")]

    any_evt = await receiver.wait_for_event("message.any")
    assert any_evt["payload"]["id"] == body["id"]
    assert any_evt["payload"]["fromMe"] is True and any_evt["payload"]["source"] == "api"
    await wait_until(lambda: len(receiver.events("message.ack")) == 2, message="two acks")
    acks = sorted((e["payload"]["ack"], e["payload"]["ackName"]) for e in receiver.events("message.ack"))
    assert acks == [(1, "SERVER"), (2, "DEVICE")]
    assert {e["payload"]["id"] for e in receiver.events("message.ack")} == {body["id"]}
    assert receiver.events("message") == []  # own messages are only message.any


async def test_send_with_a_pre_generated_id_and_find_it_by_that_id(emu) -> None:
    await emu.link("preid")
    r = await emu.client.get("/api/preid/new-message-id")
    assert r.status_code == 200
    raw = r.json()["id"]
    assert re.fullmatch(r"[0-9A-Za-z]+", raw)
    assert (await emu.client.get("/api/preid/new-message-id")).json()["id"] != raw
    lookup = f"/api/preid/chats/4915112345678@c.us/messages/true_4915112345678@c.us_{raw}"
    assert (await emu.client.get(lookup)).status_code == 404

    r = await emu.client.post("/api/sendText", json={"session": "preid", "chatId": "4915112345678", "text": "hi", "id": raw})
    assert r.status_code == 201
    assert r.json()["id"] == f"true_4915112345678@c.us_{raw}"
    found = await emu.client.get(lookup)
    assert found.status_code == 200 and found.json()["body"] == "hi"

    bad = await emu.client.post("/api/sendText", json={"session": "preid", "chatId": "1", "text": "x", "id": "a_b"})
    assert bad.status_code == 400


async def test_new_message_id_needs_a_working_session(emu) -> None:
    r = await emu.client.get("/api/nosuch/new-message-id")
    assert r.status_code == 422


async def test_sent_list_is_oldest_first(emu) -> None:
    await emu.link("order")
    for text in ("one", "two", "three"):
        r = await emu.client.post("/api/sendText", json={"session": "order", "chatId": "1@c.us", "text": text,
                                                          "reply_to": None})
        assert r.status_code == 201
    sent = (await emu.client.get("/_emulator/sessions/order/sent")).json()
    assert [m["text"] for m in sent] == ["one", "two", "three"]


async def test_inbound_emits_message_and_message_any(emu, receiver) -> None:
    await emu.link("inb", phone="15550002222", url=receiver.url, events=["message", "message.any"],
                   metadata={"user.id": "42"})
    r = await emu.client.post("/_emulator/sessions/inb/inbound", json={"from": "4917000000", "body": "hey"})
    assert r.status_code == 201
    payload = r.json()
    assert re.fullmatch(r"false_4917000000@c\.us_[0-9A-F]+", payload["id"])
    assert payload["to"] == "15550002222@c.us"
    assert payload["fromMe"] is False and payload["source"] == "app"
    assert (payload["ack"], payload["ackName"], payload["hasMedia"]) == (2, "DEVICE", False)

    msg = await receiver.wait_for_event("message")
    anym = await receiver.wait_for_event("message.any")
    assert msg["id"] != anym["id"]
    assert re.fullmatch(r"evt_[0-9a-z]{26}", msg["id"])
    assert msg["payload"]["id"] == anym["payload"]["id"] == payload["id"]
    assert msg["metadata"] == {"user.id": "42"}
    assert msg["me"] == {"id": "15550002222@c.us", "pushName": "inb"}
    assert msg["session"] == "inb" and msg["engine"] == "NOWEB"
    assert msg["environment"]["version"] == "2026.7.1"


async def test_inbound_with_given_id_and_group_participant(emu) -> None:
    await emu.link("grp")
    r = await emu.client.post("/_emulator/sessions/grp/inbound",
                              json={"from": "120363@g.us", "participant": "4917", "body": "x", "id": "ABC"})
    assert r.json()["id"] == "false_120363@g.us_ABC_4917@c.us"
    assert r.json()["participant"] == "4917@c.us"


async def test_inbound_needs_working(emu) -> None:
    await emu.create("inb2", start=False)
    r = await emu.client.post("/_emulator/sessions/inb2/inbound", json={"from": "1", "body": "x"})
    assert r.status_code == 409


async def test_manual_ack(emu, receiver) -> None:
    await emu.link("ack", url=receiver.url, events=["message.ack"])
    r = await emu.client.post("/_emulator/sessions/ack/inbound", json={"from": "77", "body": "x", "id": "R1"})
    mid = r.json()["id"]
    r = await emu.client.post("/_emulator/sessions/ack/ack", json={"id": mid, "ack": 3})
    assert r.status_code == 201
    evt = await receiver.wait_for_event("message.ack")
    assert (evt["payload"]["id"], evt["payload"]["ack"], evt["payload"]["ackName"]) == (mid, 3, "READ")


async def test_chats_and_messages_from_the_log(emu) -> None:
    await emu.link("hist2")
    await emu.client.post("/_emulator/sessions/hist2/inbound", json={"from": "111", "body": "a"})
    await emu.client.post("/api/sendText", json={"session": "hist2", "chatId": "111", "text": "b"})
    await emu.client.post("/_emulator/sessions/hist2/inbound", json={"from": "222", "body": "c"})
    chats = (await emu.client.get("/api/hist2/chats")).json()
    assert {c["id"] for c in chats} == {"111@c.us", "222@c.us"}
    msgs = (await emu.client.get("/api/hist2/chats/111@c.us/messages", params={"limit": 10})).json()
    assert [m["body"] for m in msgs] == ["b", "a"]  # newest first
    mine = (await emu.client.get("/api/hist2/chats/111@c.us/messages",
                                 params={"limit": 10, "filter.fromMe": "true"})).json()
    assert [m["body"] for m in mine] == ["b"]
    one = await emu.client.get(f"/api/hist2/chats/111@c.us/messages/{msgs[0]['id']}")
    assert one.status_code == 200 and one.json()["body"] == "b"
    assert (await emu.client.get("/api/hist2/chats/111@c.us/messages/nope")).status_code == 404


async def test_noweb_send_shape(make_emu) -> None:
    emu = make_emu(send_shape="noweb")
    await emu.link("nw")
    r = await emu.client.post("/api/sendText", json={"session": "nw", "chatId": "5", "text": "t"})
    assert r.status_code == 201
    body = r.json()
    assert body["key"]["fromMe"] is True and body["key"]["remoteJid"] == "5@s.whatsapp.net"
    assert body["status"] == "PENDING"
