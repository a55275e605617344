import time

CHATS = [
    {"id": "4917200001", "name": "Anna", "picture": "https://pps.whatsapp.net/anna.jpg", "messages": [
        {"id": "H1", "fromMe": False, "body": "old hello", "timestamp": 1_700_000_000},
        {"id": "H2", "fromMe": True, "body": "hi Anna", "timestamp": 1_700_000_100},
        {"id": "H3", "fromMe": False, "body": None, "timestamp": 1_700_000_200, "type": "image",
         "media": {"mimetype": "image/jpeg", "size": 2048}},
    ]},
    {"id": "120363000000000001", "isGroup": True, "name": "Choir", "messages": [
        {"id": "G1", "fromMe": False, "participant": "4917200002", "body": "rehearsal at 7", "timestamp": 1_700_000_050},
        {"id": "G2", "fromMe": True, "body": "I'll be there", "timestamp": 1_700_000_060},
    ]},
]


async def test_explicit_history_is_served_by_the_store(emu, receiver) -> None:
    await emu.link("hx", url=receiver.url, events=["*"])
    receiver.requests.clear()
    r = await emu.client.post("/_emulator/sessions/hx/history", json={"chats": CHATS})
    assert (r.status_code, r.json()) == (201, {"chats": 2, "messages": 5})
    chats = (await emu.client.get("/api/hx/chats")).json()
    assert [(c["id"], c["name"], c["conversationTimestamp"]) for c in chats] == [
        ("4917200001@c.us", "Anna", 1_700_000_200), ("120363000000000001@g.us", "Choir", 1_700_000_060)]
    msgs = (await emu.client.get("/api/hx/chats/4917200001@c.us/messages", params={"limit": 10})).json()
    assert [m["id"] for m in msgs] == ["false_4917200001@c.us_H3", "true_4917200001@c.us_H2",
                                       "false_4917200001@c.us_H1"]
    assert msgs[0]["hasMedia"] is True and msgs[0]["media"]["url"].endswith("/api/files/hx/H3.jpeg")
    group = (await emu.client.get("/api/hx/chats/120363000000000001@g.us/messages")).json()
    assert group[1]["participant"] == "4917200002@c.us"
    assert group[1]["id"] == "false_120363000000000001@g.us_G1_4917200002@c.us"
    # the group is one of the account's groups now
    members = (await emu.client.get("/api/hx/groups/120363000000000001@g.us/participants/v2")).json()
    assert {m["id"] for m in members} >= {"4917200002@c.us"}
    one = await emu.client.get("/api/hx/chats/4917200001@c.us/messages/H1")
    assert one.status_code == 200 and one.json()["body"] == "old hello"
    # a sync emits no webhooks
    assert receiver.requests == []


async def test_history_params(emu) -> None:
    await emu.link("hp")
    await emu.client.post("/_emulator/sessions/hp/history", json={"chats": CHATS})
    get = lambda path, **params: emu.client.get(f"/api/hp/{path}", params=params)  # noqa: E731
    ids = lambda r: [c["id"] for c in r.json()]  # noqa: E731
    assert ids(await get("chats", sortBy="id", sortOrder="asc")) == ["120363000000000001@g.us", "4917200001@c.us"]
    assert ids(await get("chats", limit=1, offset=1)) == ["120363000000000001@g.us"]
    assert ids(await get("chats", sortBy="name", sortOrder="asc")) == ["4917200001@c.us", "120363000000000001@g.us"]
    msgs = "chats/4917200001@c.us/messages"
    assert ids(await get(msgs, limit=10, sortOrder="asc", **{"filter.timestamp.gte": 1_700_000_100})) == [
        "true_4917200001@c.us_H2", "false_4917200001@c.us_H3"]
    assert ids(await get(msgs, limit=10, **{"filter.timestamp.lte": 1_700_000_000})) == ["false_4917200001@c.us_H1"]
    assert ids(await get(msgs, limit=10, **{"filter.fromMe": "true"})) == ["true_4917200001@c.us_H2"]
    assert ids(await get(msgs, limit=10, sortBy="messageTimestamp")) [0] == "false_4917200001@c.us_H3"
    no_media = (await get(msgs, limit=1, downloadMedia="false")).json()[0]
    assert no_media["hasMedia"] is True and no_media["media"] is None


async def test_chats_overview(emu) -> None:
    await emu.link("ov")
    await emu.client.post("/_emulator/sessions/ov/history", json={"chats": CHATS})
    r = await emu.client.get("/api/ov/chats/overview")
    assert r.status_code == 200
    items = r.json()
    assert [set(i) for i in items] == [{"id", "name", "picture", "lastMessage", "_chat"}] * 2
    anna = items[0]
    assert (anna["id"], anna["name"], anna["picture"]) == ("4917200001@c.us", "Anna", "https://pps.whatsapp.net/anna.jpg")
    assert anna["lastMessage"]["id"] == "false_4917200001@c.us_H3" and anna["lastMessage"]["media"] is None
    assert anna["_chat"]["id"] == "4917200001@c.us"
    assert items[1]["name"] == "Choir"
    one = (await emu.client.get("/api/ov/chats/overview", params={"limit": 1, "offset": 1})).json()
    assert [i["id"] for i in one] == ["120363000000000001@g.us"]
    picked = (await emu.client.get("/api/ov/chats/overview", params={"ids": ["120363000000000001@g.us"]})).json()
    assert [i["id"] for i in picked] == ["120363000000000001@g.us"]
    r = await emu.client.post("/api/ov/chats/overview", json={"pagination": {"limit": 5},
                                                              "filter": {"ids": ["4917200001@c.us"]}})
    assert r.status_code == 201 and [i["id"] for i in r.json()] == ["4917200001@c.us"]
    assert (await emu.client.post("/api/ov/chats/overview", json={"filter": {"ids": "x"}})).status_code == 400


async def test_generated_history_is_deterministic(make_emu) -> None:
    seen = []
    for _ in range(2):
        emu = make_emu()
        await emu.link("gh", phone="15550008888")
        r = await emu.client.post("/_emulator/sessions/gh/history",
                                  json={"generate": {"chats": 12, "messagesPerChat": 6, "seed": "s1",
                                                     "until": 1_760_000_000}})
        assert r.json() == {"chats": 12, "messages": 72}
        chats = (await emu.client.get("/api/gh/chats", params={"merge": "false"})).json()
        first = chats[0]["id"]
        msgs = (await emu.client.get(f"/api/gh/chats/{first}/messages", params={"limit": 10})).json()
        seen.append((chats, [(m["id"], m["body"], m["timestamp"]) for m in msgs]))
    assert seen[0] == seen[1]
    chats, msgs = seen[0]
    assert len(chats) == 12 and len(msgs) == 6
    assert all(c["name"] for c in chats)
    assert any(c["id"].endswith("@g.us") for c in chats)
    assert chats[0]["conversationTimestamp"] <= 1_760_000_000
    other = make_emu()
    await other.link("gh", phone="15550008888")
    await other.client.post("/_emulator/sessions/gh/history", json={"generate": {"chats": 12, "seed": "s2"}})
    assert [c["id"] for c in (await other.client.get("/api/gh/chats")).json()] != [c["id"] for c in chats]


async def test_a_large_history_is_cheap_until_read(emu) -> None:
    await emu.link("big")
    t0 = time.perf_counter()
    r = await emu.client.post("/_emulator/sessions/big/history",
                              json={"generate": {"chats": 200, "messagesPerChat": 50}})
    assert r.json() == {"chats": 200, "messages": 10_000}
    chats = (await emu.client.get("/api/big/chats", params={"limit": 200, "merge": "false"})).json()
    overview = (await emu.client.get("/api/big/chats/overview", params={"limit": 50})).json()
    assert time.perf_counter() - t0 < 2.0
    assert len(chats) == 200 and len(overview) == 50 and all(o["lastMessage"] for o in overview)
    inspect = (await emu.client.get("/_emulator/sessions/big")).json()
    assert inspect["chats"] == 200 and inspect["messages"] == 0  # nothing made yet
    # a message looked up by id makes only its chat
    last = overview[-1]["lastMessage"]
    chat = last["to"] if last["fromMe"] else last["from"]
    one = await emu.client.get(f"/api/big/chats/{chat}/messages/{last['id']}")
    assert one.status_code == 200 and one.json()["id"] == last["id"]
    assert (await emu.client.get("/_emulator/sessions/big")).json()["messages"] == 50
    page = (await emu.client.get(f"/api/big/chats/{chat}/messages", params={"limit": 50})).json()
    assert len(page) == 50 and page[0]["id"] == last["id"]


async def test_generated_history_has_groups_contacts_and_media(emu) -> None:
    await emu.link("rich")
    await emu.client.post("/_emulator/sessions/rich/history",
                          json={"generate": {"chats": 40, "messagesPerChat": 30, "seed": "rich"}})
    groups = (await emu.client.get("/api/rich/groups")).json()
    assert groups and all(g["subject"] for g in groups.values())
    contacts = (await emu.client.get("/api/contacts/all", params={"session": "rich"})).json()
    assert contacts and any(c["name"] for c in contacts) and all(c["pushname"] for c in contacts)
    media = []
    for c in (await emu.client.get("/api/rich/chats", params={"limit": 40, "merge": "false"})).json():
        page = (await emu.client.get(f"/api/rich/chats/{c['id']}/messages", params={"limit": 30})).json()
        media += [m for m in page if m["hasMedia"]]
    assert media
    f = await emu.client.get("/api/files/" + media[0]["media"]["url"].split("/api/files/")[1])
    assert f.status_code == 200 and len(f.content) > 1000


async def test_seed_history_for_new_pairings(make_emu) -> None:
    emu = make_emu(seed_history=5, seed_history_messages=4)
    await emu.link("seeded")
    chats = (await emu.client.get("/api/seeded/chats", params={"merge": "false"})).json()
    assert len(chats) == 5
    # a restart is no new pairing
    await emu.client.post("/api/sessions/seeded/restart")
    await emu.wait_status("seeded", "WORKING")
    assert len((await emu.client.get("/api/seeded/chats", params={"merge": "false"})).json()) == 5


async def test_bad_history_is_400(emu) -> None:
    await emu.link("hb")
    for body in ({}, {"chats": "x"}, {"chats": [{"messages": []}]},
                 {"chats": [{"id": "1", "messages": [{"fromMe": "no", "body": "x", "timestamp": 1}]}]},
                 {"chats": [{"id": "1@g.us", "messages": [{"fromMe": False, "body": "x", "timestamp": 1}]}]},
                 {"generate": {"chats": -1}}, {"generate": {"chats": 1000, "messagesPerChat": 1000}}):
        assert (await emu.client.post("/_emulator/sessions/hb/history", json=body)).status_code == 400, body
    assert (await emu.client.post("/_emulator/sessions/ghost/history", json={"chats": []})).status_code == 404
