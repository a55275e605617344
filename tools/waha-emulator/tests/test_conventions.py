import hashlib

import httpx

from waha_emulator import EmulatorConfig, create_app


async def test_missing_or_wrong_key_is_401(emu) -> None:
    for client, headers in ((emu.anon, {}), (emu.anon, {"X-Api-Key": "wrong"})):
        r = await client.get("/api/sessions", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"message": "Unauthorized", "statusCode": 401}
    # also for routes that do not exist, and for POSTs
    assert (await emu.anon.post("/api/sessions", json={"name": "x"})).status_code == 401
    assert (await emu.anon.get("/api/nothing/here")).status_code == 401


async def test_ping_and_health_need_no_key(emu) -> None:
    r = await emu.anon.get("/ping")
    assert (r.status_code, r.json()) == (200, {"message": "pong"})
    assert (await emu.anon.get("/health")).status_code == 200


async def test_query_key_only_accepted_on_files(emu) -> None:
    r = await emu.anon.get("/api/files/s/x.jpg", params={"x-api-key": "test-key"})
    assert r.status_code == 404
    assert r.json()["error"]["key"] == "FILE_NOT_FOUND"
    assert (await emu.anon.get("/api/files/s/x.jpg", params={"x-api-key": "nope"})).status_code == 401
    assert (await emu.anon.get("/api/sessions", params={"x-api-key": "test-key"})).status_code == 401


async def test_post_answers_201_and_get_200(emu) -> None:
    r = await emu.create("conv", start=False)
    assert r.status_code == 201
    assert (await emu.client.post("/api/sessions/conv/start")).status_code == 201
    assert (await emu.client.post("/api/sessions/conv/stop")).status_code == 201
    assert (await emu.client.get("/api/sessions/conv")).status_code == 200
    assert (await emu.client.put("/api/sessions/conv", json={"config": {}})).status_code == 200
    r = await emu.client.delete("/api/sessions/conv")
    assert (r.status_code, r.content) == (200, b"")


async def test_unknown_route_is_nest_404(emu) -> None:
    r = await emu.client.post("/api/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "Cannot POST /api/nope", "error": "Not Found", "statusCode": 404}


async def test_server_version(emu) -> None:
    r = await emu.client.get("/api/server/version")
    assert r.status_code == 200
    assert r.json()["version"] == "2026.7.1"
    assert r.json()["engine"] == "NOWEB"


async def test_sha512_key_form() -> None:
    app = create_app(EmulatorConfig(api_key="sha512:" + hashlib.sha512(b"plain").hexdigest()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as c:
        assert (await c.get("/api/sessions", headers={"X-Api-Key": "plain"})).status_code == 200
        assert (await c.get("/api/sessions", headers={"X-Api-Key": "other"})).status_code == 401
    await app.state.emulator.aclose()


async def test_generated_key_when_unset(capsys) -> None:
    app = create_app(EmulatorConfig(api_key=None))
    key = app.state.emulator.config.api_key
    assert key and key in capsys.readouterr().out
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as c:
        assert (await c.get("/api/sessions", headers={"X-Api-Key": key})).status_code == 200
    await app.state.emulator.aclose()
