import asyncio

from waha_emulator.testing import wait_until


async def test_injected_500_with_rate_1(emu) -> None:
    r = await emu.client.post("/_emulator/faults", json={"status": 500})
    assert r.status_code == 201
    assert r.json() == {"status": 500, "rate": 1.0, "latencyMs": 0, "duplicateWebhooks": 0, "sessions": None,
                        "paths": None, "times": None, "retryAfter": 1}
    r = await emu.client.post("/api/sessions", json={"name": "f1"})
    assert r.status_code == 500
    assert r.json()["statusCode"] == 500 and "exception" in r.json()
    # the control API and /ping are not affected, and nothing was created
    assert (await emu.client.get("/ping")).status_code == 200
    await emu.client.post("/_emulator/faults", json={})
    assert (await emu.client.get("/_emulator/faults")).json()["status"] is None
    assert (await emu.client.get("/api/sessions/f1")).status_code == 404


async def test_injected_429_carries_retry_after(emu) -> None:
    await emu.client.post("/_emulator/faults", json={"status": 429, "rate": 1})
    r = await emu.client.get("/api/sessions")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"


async def test_fault_rate_zero_never_fails(emu) -> None:
    await emu.client.post("/_emulator/faults", json={"status": 500, "rate": 0})
    for _ in range(5):
        assert (await emu.client.get("/api/sessions")).status_code == 200


async def test_latency(emu) -> None:
    await emu.client.post("/_emulator/faults", json={"latencyMs": 300})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await emu.client.get("/api/sessions")).status_code == 200
    assert loop.time() - t0 >= 0.28
    t0 = loop.time()
    await emu.client.get("/_emulator/faults")
    assert loop.time() - t0 < 0.25


async def test_bad_fault_body_is_400(emu) -> None:
    assert (await emu.client.post("/_emulator/faults", json={"status": 200})).status_code == 400
    assert (await emu.client.post("/_emulator/faults", json={"rate": 2})).status_code == 400
    assert (await emu.client.post("/_emulator/faults", json={"sessions": "s1"})).status_code == 400


async def test_faults_limited_to_some_sessions(emu) -> None:
    await emu.create("hit", start=False)
    await emu.create("spared", start=False)
    r = await emu.client.post("/_emulator/faults", json={"status": 503, "latencyMs": 300, "sessions": ["hit"]})
    assert r.json()["sessions"] == ["hit"]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await emu.client.get("/api/sessions/spared")).status_code == 200
    assert loop.time() - t0 < 0.25
    t0 = loop.time()
    assert (await emu.client.get("/api/sessions/hit")).status_code == 503
    assert loop.time() - t0 >= 0.28
    assert (await emu.client.post("/api/sendText", json={"session": "hit", "chatId": "1", "text": "x"})).status_code == 503


async def test_a_call_is_logged_while_in_flight(emu) -> None:
    await emu.create("slow", start=False)
    await emu.client.post("/_emulator/faults", json={"latencyMs": 500, "sessions": ["slow"]})
    pending = asyncio.create_task(emu.client.get("/api/sessions/slow"))

    async def in_flight() -> bool:
        calls = (await emu.client.get("/_emulator/calls", params={"path": "/api/sessions/slow"})).json()
        return [c["status"] for c in calls] == [None]

    await wait_until(in_flight, message="the call logged before its answer")
    assert (await pending).status_code == 200
    calls = (await emu.client.get("/_emulator/calls", params={"path": "/api/sessions/slow"})).json()
    assert [c["status"] for c in calls] == [200]


async def test_duplicate_webhooks(emu, receiver) -> None:
    await emu.client.post("/_emulator/faults", json={"duplicateWebhooks": 2})
    await emu.create("dupwh", url=receiver.url, events=["session.status"], start=False)
    await emu.client.post("/api/sessions/dupwh/start")
    await wait_until(lambda: len(receiver.requests) >= 3, message="3 copies")
    await wait_until(lambda: emu.emulator.webhooks.stats.in_flight == 0, message="idle")
    starting = [r for r in receiver.requests if r.json["payload"]["status"] == "STARTING"]
    assert len(starting) == 3
    assert len({r.json["id"] for r in starting}) == 1
    assert len({r.headers["x-webhook-request-id"] for r in starting}) == 3


async def test_call_log_and_reset(emu) -> None:
    await emu.create("c1", start=False)
    await emu.create("c1", start=False)
    await emu.client.post("/api/sendText", json={"session": "c1", "chatId": "1", "text": "x"})
    calls = (await emu.client.get("/_emulator/calls", params={"method": "POST", "path": "/api/sessions"})).json()
    assert [(c["session"], c["status"]) for c in calls] == [("c1", 201), ("c1", 422)]
    send = (await emu.client.get("/_emulator/calls", params={"path": "/api/sendText"})).json()
    assert send[0]["session"] == "c1" and send[0]["status"] == 422

    r = await emu.client.post("/_emulator/reset")
    assert r.status_code == 201
    assert (await emu.client.get("/api/sessions", params={"all": "true"})).json() == []
    assert [c["path"] for c in (await emu.client.get("/_emulator/calls")).json()] == ["/api/sessions"]
    assert (await emu.client.get("/_emulator/stats")).json()["sessions"] == 0


async def test_faults_on_some_paths_for_a_number_of_calls(emu) -> None:
    await emu.create("fp", start=False)
    r = await emu.client.post("/_emulator/faults", json={"status": 503, "paths": ["/api/sessions/fp"], "times": 2})
    assert (r.json()["paths"], r.json()["times"]) == (["/api/sessions/fp"], 2)
    assert (await emu.client.get("/api/sessions")).status_code == 200  # another path
    assert [(await emu.client.get("/api/sessions/fp")).status_code for _ in range(3)] == [503, 503, 200]
    assert (await emu.client.get("/_emulator/faults")).json()["times"] == 0
    calls = (await emu.client.get("/_emulator/calls", params={"path": "/api/sessions/fp"})).json()
    assert [c["fault"] for c in calls] == [True, True, False]


async def test_429_with_retry_after_on_the_history_endpoints(emu) -> None:
    await emu.link("wf_x")
    await emu.client.post("/_emulator/faults", json={"status": 429, "paths": ["/api/wf_x/chats"], "times": 3,
                                                     "retryAfter": 2})
    answers = [await emu.client.get("/api/wf_x/chats"),
               await emu.client.get("/api/wf_x/chats/overview"),
               await emu.client.get("/api/wf_x/chats/1@c.us/messages", params={"limit": 5})]
    assert [a.status_code for a in answers] == [429, 429, 429]
    assert {a.headers["retry-after"] for a in answers} == {"2"}
    assert answers[0].json() == {"message": "ThrottlerException: Too Many Requests", "statusCode": 429}
    assert (await emu.client.get("/api/wf_x/chats")).status_code == 200
    assert (await emu.client.get("/api/sessions/wf_x")).status_code == 200


async def test_bad_paths_or_times_are_400(emu) -> None:
    for body in ({"paths": "/api"}, {"paths": ["api"]}, {"times": -1}, {"times": True}, {"retryAfter": "1"}):
        assert (await emu.client.post("/_emulator/faults", json=body)).status_code == 400, body
