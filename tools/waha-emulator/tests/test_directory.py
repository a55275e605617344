from waha_emulator.testing import wait_until

GROUP_EVENTS = ["group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants"]


async def test_groups_and_their_events(emu, receiver) -> None:
    await emu.link("grp", phone="15550009000", url=receiver.url, events=GROUP_EVENTS)
    r = await emu.client.post("/_emulator/sessions/grp/groups", json={
        "id": "120363000000000777", "subject": "Climbing", "description": "Tuesdays",
        "participants": ["4917300001", {"id": "4917300002", "admin": "admin"}, {"id": "4917300003", "asLid": True}]})
    assert r.status_code == 201
    gid = "120363000000000777@g.us"
    join = (await receiver.wait_for_event("group.v2.join"))["payload"]
    assert join["group"]["id"] == gid and join["group"]["subject"] == "Climbing"
    assert join["group"]["description"] == "Tuesdays" and join["group"]["invite"].startswith("https://chat.whatsapp.com/")
    assert {"id": "15550009000@c.us", "pn": "15550009000@c.us", "role": "superadmin"} in join["group"]["participants"]
    assert join["timestamp"] > 10**12  # Date.now()

    groups = (await emu.client.get("/api/grp/groups")).json()
    assert list(groups) == [gid]  # NOWEB: keyed by id
    meta = groups[gid]
    assert meta["subject"] == "Climbing" and meta["addressingMode"] == "lid" and meta["size"] == 4
    assert {"id": "4917300002@s.whatsapp.net", "admin": "admin"} in meta["participants"]
    lid = next(p for p in meta["participants"] if p["id"].endswith("@lid"))
    assert lid["phoneNumber"] == "4917300003@s.whatsapp.net"
    assert "participants" not in (await emu.client.get("/api/grp/groups",
                                                       params={"exclude": "participants"})).json()[gid]
    assert (await emu.client.get("/api/grp/groups/count")).json() == {"count": 1}
    assert (await emu.client.get(f"/api/grp/groups/{gid}")).json()["id"] == gid
    v2 = (await emu.client.get(f"/api/grp/groups/{gid}/participants/v2")).json()
    assert {"id": "4917300001@c.us", "pn": "4917300001@c.us", "role": "participant"} in v2
    assert {"id": lid["id"], "pn": "4917300003@c.us", "role": "participant"} in v2
    missing = await emu.client.get("/api/grp/groups/999@g.us")
    assert missing.status_code == 500 and "not found" in missing.json()["exception"]["message"]

    r = await emu.client.post(f"/_emulator/sessions/grp/groups/{gid}", json={"subject": "Climbing club"})
    assert r.status_code == 201
    upd = (await receiver.wait_for_event("group.v2.update"))["payload"]
    assert upd["group"] == {"id": gid, "subject": "Climbing club"}

    r = await emu.client.post(f"/_emulator/sessions/grp/groups/{gid}/participants",
                              json={"action": "add", "participants": ["4917300004"]})
    assert r.status_code == 201
    evt = (await receiver.wait_for_event("group.v2.participants"))["payload"]
    assert (evt["type"], evt["participants"], evt["group"]) == (
        "join", [{"id": "4917300004@c.us", "role": "participant"}], {"id": gid})
    await emu.client.post(f"/_emulator/sessions/grp/groups/{gid}/participants",
                          json={"action": "promote", "participants": ["4917300004"]})
    assert {"id": "4917300004@c.us", "pn": "4917300004@c.us", "role": "admin"} in (
        await emu.client.get(f"/api/grp/groups/{gid}/participants/v2")).json()

    await emu.client.post(f"/_emulator/sessions/grp/groups/{gid}/participants",
                          json={"action": "remove", "participants": ["15550009000"]})
    leave = (await receiver.wait_for_event("group.v2.leave"))["payload"]
    assert leave["group"] == {"id": gid}
    await wait_until(lambda: len(receiver.events("group.v2.participants")) == 3, message="3 participant events")
    assert receiver.events("group.v2.participants")[-1]["payload"]["type"] == "leave"
    assert (await emu.client.get("/api/grp/groups")).json() == {}


async def test_group_control_errors(emu) -> None:
    await emu.link("ge")
    assert (await emu.client.post("/_emulator/sessions/ge/groups", json={})).status_code == 400
    r = await emu.client.post("/_emulator/sessions/ge/groups/nope@g.us", json={"subject": "x"})
    assert r.status_code == 404
    r = await emu.client.post("/_emulator/sessions/ge/groups", json={"subject": "g"})
    gid = r.json()["id"]
    assert gid.endswith("@g.us")
    bad = await emu.client.post(f"/_emulator/sessions/ge/groups/{gid}/participants",
                                json={"action": "kick", "participants": []})
    assert bad.status_code == 400
    await emu.client.post("/api/sessions/ge/stop")
    assert (await emu.client.post("/_emulator/sessions/ge/groups", json={"subject": "g"})).status_code == 409


async def test_contacts_and_pictures(emu) -> None:
    await emu.link("ct")
    r = await emu.client.post("/_emulator/sessions/ct/contacts", json={"contacts": [
        {"phone": "+4917400001", "name": "Anna Berg", "pushName": "Anna", "picture": "https://pps.whatsapp.net/a.jpg"},
        {"id": "4917400002@c.us", "pushName": "Ben"}]})
    assert (r.status_code, r.json()) == (201, {"contacts": 2})
    all_ = (await emu.client.get("/api/contacts/all", params={"session": "ct", "sortBy": "id"})).json()
    assert all_ == [{"id": "4917400001@c.us", "name": "Anna Berg", "pushname": "Anna"},
                    {"id": "4917400002@c.us", "name": None, "pushname": "Ben"}]
    assert len((await emu.client.get("/api/contacts/all", params={"session": "ct", "limit": 1})).json()) == 1
    one = await emu.client.get("/api/contacts", params={"session": "ct", "contactId": "4917400002"})
    assert one.json()["pushname"] == "Ben"
    assert (await emu.client.get("/api/ct/contacts/4917400001@c.us")).json()["name"] == "Anna Berg"
    unknown = await emu.client.get("/api/contacts", params={"session": "ct", "contactId": "1"})
    assert (unknown.status_code, unknown.content) == (200, b"")
    pic = await emu.client.get("/api/contacts/profile-picture", params={"session": "ct", "contactId": "4917400001"})
    assert pic.json() == {"profilePictureURL": "https://pps.whatsapp.net/a.jpg"}
    none = await emu.client.get("/api/contacts/profile-picture", params={"session": "ct", "contactId": "4917400002"})
    assert none.json() == {"profilePictureURL": None}
    assert (await emu.client.get("/api/ct/chats/4917400001@c.us/picture")).json() == {
        "url": "https://pps.whatsapp.net/a.jpg"}
    # a chat is named after the contact
    await emu.client.post("/_emulator/sessions/ct/inbound", json={"from": "4917400001", "body": "hi"})
    assert (await emu.client.get("/api/ct/chats")).json()[0]["name"] == "Anna Berg"
    assert (await emu.client.get("/api/contacts/all")).status_code == 400  # session is required


async def test_both_ids_for_a_person(emu, receiver) -> None:
    await emu.link("lid", url=receiver.url, events=["message"])
    msg = (await emu.client.post("/_emulator/sessions/lid/inbound",
                                 json={"from": "4915112345678", "asLid": True, "body": "from a lid"})).json()
    lid = msg["from"]
    assert lid.endswith("@lid") and lid != "4915112345678@lid"
    again = (await emu.client.post("/_emulator/sessions/lid/inbound",
                                   json={"from": "4915112345678", "asLid": True, "body": "again"})).json()
    assert again["from"] == lid  # stable
    assert (await receiver.wait_for_event("message"))["payload"]["from"] == lid

    assert (await emu.client.get(f"/api/lid/lids/{lid}")).json() == {"lid": lid, "pn": "4915112345678@c.us"}
    assert (await emu.client.get(f"/api/lid/lids/{lid.split('@')[0]}")).json()["pn"] == "4915112345678@c.us"
    assert (await emu.client.get("/api/lid/lids/pn/4915112345678")).json() == {"lid": lid,
                                                                              "pn": "4915112345678@c.us"}
    assert (await emu.client.get("/api/lid/lids/pn/4900000000")).json() == {"lid": None, "pn": "4900000000@c.us"}
    assert (await emu.client.get("/api/lid/lids/123@x")).status_code == 422
    assert (await emu.client.get("/api/lid/lids")).json() == [{"lid": lid, "pn": "4915112345678@c.us"}]
    assert (await emu.client.get("/api/lid/lids/count")).json() == {"count": 1}
    # merge (the default) shows the person's chats as one, under the phone number
    await emu.client.post("/_emulator/sessions/lid/inbound", json={"from": "4915112345678", "body": "from the pn"})
    assert [c["id"] for c in (await emu.client.get("/api/lid/chats")).json()] == ["4915112345678@c.us"]
    assert {c["id"] for c in (await emu.client.get("/api/lid/chats", params={"merge": "false"})).json()} == {
        "4915112345678@c.us", lid}
    merged = (await emu.client.get("/api/lid/chats/4915112345678@c.us/messages")).json()
    assert [m["body"] for m in merged] == ["from the pn", "again", "from a lid"]
    only_pn = (await emu.client.get("/api/lid/chats/4915112345678@c.us/messages", params={"merge": "false"})).json()
    assert [m["body"] for m in only_pn] == ["from the pn"]
    group = (await emu.client.post("/_emulator/sessions/lid/inbound", json={
        "from": "120363000000000888@g.us", "participant": "4915112345678", "asLid": True, "body": "in a group"})).json()
    assert group["participant"] == lid and group["id"].endswith(f"_{lid}")


async def test_without_the_store_contacts_and_lids_are_refused(emu) -> None:
    await emu.client.post("/api/sessions", json={"name": "nsd", "start": True,
                                                 "config": {"noweb": {"store": {"enabled": False}}}})
    await emu.link("nsd")
    for path, params in (("/api/contacts/all", {"session": "nsd"}), ("/api/contacts", {"session": "nsd", "contactId": "1"}),
                         ("/api/nsd/lids", {}), ("/api/nsd/lids/count", {}), ("/api/nsd/lids/1@lid", {}),
                         ("/api/nsd/lids/pn/1", {}), ("/api/nsd/chats/overview", {})):
        r = await emu.client.get(path, params=params)
        assert r.status_code == 400 and "Enable NOWEB store" in r.json()["message"], path
    # groups and pictures come from WhatsApp's server, not the store
    assert (await emu.client.get("/api/nsd/groups")).status_code == 200
    assert (await emu.client.get("/api/contacts/profile-picture",
                                 params={"session": "nsd", "contactId": "1"})).status_code == 200
