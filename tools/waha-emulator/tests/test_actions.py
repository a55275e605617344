from waha_emulator.testing import wait_until

EVENTS = ["message", "message.any", "message.reaction", "message.edited", "message.revoked", "presence.update"]


async def inbound(emu, name: str, **body) -> dict:
    r = await emu.client.post(f"/_emulator/sessions/{name}/inbound", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def message(emu, name: str, chat: str, message_id: str):
    return await emu.client.get(f"/api/{name}/chats/{chat}/messages/{message_id}")


async def test_the_other_person_reacts_edits_and_revokes(emu, receiver) -> None:
    await emu.link("oth", phone="15550004444", url=receiver.url, events=EVENTS)
    msg = await inbound(emu, "oth", **{"from": "4917100001", "body": "hello", "id": "M1"})
    mine = (await emu.client.post("/api/sendText", json={"session": "oth", "chatId": "4917100001",
                                                          "text": "hi"})).json()

    r = await emu.client.post("/_emulator/sessions/oth/reaction",
                              json={"from": "4917100001", "messageId": mine["id"], "text": "👍"})
    assert r.status_code == 201
    evt = (await receiver.wait_for_event("message.reaction"))["payload"]
    assert evt["reaction"] == {"text": "👍", "messageId": mine["id"]}
    assert (evt["fromMe"], evt["from"], evt["to"], evt["source"]) == (False, "4917100001@c.us", "15550004444@c.us", "app")
    assert evt["id"].startswith("false_4917100001@c.us_")
    stored = (await message(emu, "oth", "4917100001@c.us", mine["id"])).json()
    assert [x["text"] for x in stored["_data"]["reactions"]] == ["👍"]
    await emu.client.post("/_emulator/sessions/oth/reaction", json={"from": "4917100001", "messageId": mine["id"],
                                                                    "text": ""})
    await wait_until(lambda: len(receiver.events("message.reaction")) == 2, message="removal")
    assert receiver.events("message.reaction")[1]["payload"]["reaction"]["text"] == ""
    stored = (await message(emu, "oth", "4917100001@c.us", mine["id"])).json()
    assert "reactions" not in stored["_data"]

    r = await emu.client.post("/_emulator/sessions/oth/edit",
                              json={"from": "4917100001", "messageId": msg["id"], "body": "hello!!"})
    assert r.status_code == 201
    edited = (await receiver.wait_for_event("message.edited"))["payload"]
    assert (edited["editedMessageId"], edited["body"], edited["fromMe"]) == ("M1", "hello!!", False)
    assert edited["id"] != msg["id"]
    assert edited["_data"]["message"]["protocolMessage"]["type"] == "MESSAGE_EDIT"
    assert (await message(emu, "oth", "4917100001@c.us", msg["id"])).json()["body"] == "hello!!"

    r = await emu.client.post("/_emulator/sessions/oth/revoke", json={"from": "4917100001", "messageId": msg["id"]})
    assert r.status_code == 201
    revoked = (await receiver.wait_for_event("message.revoked"))["payload"]
    assert (revoked["revokedMessageId"], revoked["before"]) == ("M1", None)
    assert revoked["after"]["id"].startswith("false_4917100001@c.us_") and revoked["after"]["body"] is None
    # NOWEB's store drops a revoked message
    assert (await message(emu, "oth", "4917100001@c.us", msg["id"])).status_code == 404
    # none of these is a new message
    assert [e["payload"]["body"] for e in receiver.events("message")] == ["hello"]


async def test_own_reaction_edit_delete(emu, receiver) -> None:
    await emu.link("own", phone="15550005555", url=receiver.url, events=EVENTS)
    msg = await inbound(emu, "own", **{"from": "4917100002", "body": "ping", "id": "P1"})
    mine = (await emu.client.post("/api/sendText", json={"session": "own", "chatId": "4917100002",
                                                          "text": "pong"})).json()

    r = await emu.client.put("/api/reaction", json={"session": "own", "messageId": msg["id"], "reaction": "❤️"})
    assert r.status_code == 200
    assert r.json()["key"]["fromMe"] is True and r.json()["message"]["reactionMessage"]["text"] == "❤️"
    evt = (await receiver.wait_for_event("message.reaction"))["payload"]
    assert (evt["fromMe"], evt["source"], evt["from"], evt["to"]) == (True, "api", "15550005555@c.us", "4917100002@c.us")
    assert evt["reaction"] == {"text": "❤️", "messageId": msg["id"]}

    chat = "4917100002@c.us"
    r = await emu.client.put(f"/api/own/chats/{chat}/messages/{mine['id']}", json={"text": "pong!"})
    assert r.status_code == 200
    assert r.json()["message"]["protocolMessage"]["editedMessage"] == {"conversation": "pong!"}
    edited = (await receiver.wait_for_event("message.edited"))["payload"]
    assert (edited["fromMe"], edited["source"], edited["body"]) == (True, "api", "pong!")
    assert edited["editedMessageId"] == mine["id"].split("_")[2]
    assert (await message(emu, "own", chat, mine["id"])).json()["body"] == "pong!"

    r = await emu.client.delete(f"/api/own/chats/{chat}/messages/{mine['id']}")
    assert r.status_code == 200 and r.json()["message"]["protocolMessage"]["type"] == "REVOKE"
    revoked = (await receiver.wait_for_event("message.revoked"))["payload"]
    assert revoked["after"]["fromMe"] is True and revoked["revokedMessageId"] == mine["id"].split("_")[2]
    assert (await message(emu, "own", chat, mine["id"])).status_code == 404

    actions = (await emu.client.get("/_emulator/sessions/own/actions")).json()
    assert [a["action"] for a in actions] == ["reaction", "edit", "delete"]
    assert actions[1]["text"] == "pong!" and actions[2]["messageId"] == mine["id"]
    assert [a["action"] for a in (await emu.client.get("/_emulator/sessions/own/actions",
                                                       params={"action": "edit"})).json()] == ["edit"]
    # the sent log only has sends
    assert [m["kind"] for m in (await emu.client.get("/_emulator/sessions/own/sent")).json()] == ["text"]
    # no message.any for reactions, edits or deletes
    await wait_until(lambda: emu.emulator.webhooks.stats.in_flight == 0, message="idle")
    assert [e["payload"]["body"] for e in receiver.events("message.any")] == ["ping", "pong"]


async def test_own_actions_need_a_serialized_id_and_a_working_session(emu) -> None:
    await emu.link("bad")
    r = await emu.client.put("/api/reaction", json={"session": "bad", "messageId": "nope", "reaction": "x"})
    assert r.status_code == 500 and "exception" in r.json()
    assert (await emu.client.put("/api/reaction", json={"session": "bad"})).status_code == 400
    assert (await emu.client.delete("/api/bad/chats/1@c.us/messages/garbage")).status_code == 500
    r = await emu.client.put("/api/reaction", json={"session": "ghost", "messageId": "true_1@c.us_AAAAAAAA",
                                                    "reaction": "x"})
    assert r.status_code == 422
    await emu.create("idle", start=False)
    assert (await emu.client.post("/_emulator/sessions/idle/reaction",
                                  json={"from": "1", "messageId": "x", "text": "y"})).status_code == 409


async def test_send_seen_typing_presence(emu, receiver) -> None:
    await emu.link("seen", url=receiver.url, events=["*"])
    a = await inbound(emu, "seen", **{"from": "4917100003", "body": "one"})
    b = await inbound(emu, "seen", **{"from": "4917100003", "body": "two"})

    r = await emu.client.post("/api/sendSeen", json={"session": "seen", "chatId": "4917100003@c.us",
                                                     "messageIds": [a["id"]]})
    assert (r.status_code, r.content) == (201, b"")
    assert (await message(emu, "seen", "4917100003@c.us", a["id"])).json()["ackName"] == "READ"
    r = await emu.client.post("/api/sendSeen", json={"session": "seen", "chatId": "4917100003@c.us"})
    assert (r.status_code, r.json()) == (201, {"ids": [b["id"]]})

    for path in ("/api/startTyping", "/api/stopTyping"):
        r = await emu.client.post(path, json={"session": "seen", "chatId": "4917100003"})
        assert (r.status_code, r.json()) == (201, {"result": True})
    r = await emu.client.post("/api/seen/presence", json={"presence": "typing", "chatId": "4917100003@c.us"})
    assert (r.status_code, r.content) == (201, b"")
    r = await emu.client.post("/api/seen/presence", json={"presence": "offline"})
    assert r.status_code == 201
    assert (await emu.client.get("/api/sessions/seen")).json()["presence"] == "offline"

    bad = await emu.client.post("/api/seen/presence", json={"presence": "online", "chatId": "1@c.us"})
    assert bad.status_code == 400 and "global scope" in bad.json()["detail"]
    assert (await emu.client.post("/api/seen/presence", json={"presence": "typing"})).status_code == 400
    assert (await emu.client.post("/api/seen/presence", json={"presence": "dancing"})).status_code == 400

    actions = (await emu.client.get("/_emulator/sessions/seen/actions")).json()
    assert [a["action"] for a in actions] == ["seen", "seen", "typing", "typing", "presence", "presence"]
    assert actions[0]["messageIds"] == [a["id"]] and actions[1]["messageIds"] == [b["id"]]
    assert [x["state"] for x in actions[2:4]] == ["start", "stop"]
    await wait_until(lambda: emu.emulator.webhooks.stats.in_flight == 0, message="idle")
    assert receiver.events("message.ack") == [] and receiver.events("presence.update") == []


async def test_the_other_person_types(emu, receiver) -> None:
    await emu.link("typ", url=receiver.url, events=["presence.update"])
    r = await emu.client.post("/_emulator/sessions/typ/presence", json={"from": "4917100004", "presence": "typing"})
    assert r.status_code == 201
    evt = (await receiver.wait_for_event("presence.update"))["payload"]
    assert evt == {"id": "4917100004@c.us", "presences": [
        {"participant": "4917100004@c.us", "lastKnownPresence": "typing", "lastSeen": None}]}
    r = await emu.client.post("/_emulator/sessions/typ/presence",
                              json={"from": "1203@g.us", "participant": "4917100005", "presence": "recording"})
    assert r.json()["presences"][0]["participant"] == "4917100005@c.us" and r.json()["id"] == "1203@g.us"
