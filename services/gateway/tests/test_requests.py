"""Request validation and the broker-down path: everything the gateway answers without a responder."""

import pytest

BAD_CHAT_IDS = [
    "alice.bob@c.us",
    "123*@c.us",
    "#123@c.us",
    "123@c.us.",
    "123@c.us#",
    "123@*",
    "123@example.com",
    "１２３@c.us",
    "123@c.üs",
    "user.*.#",
    "",
    "1" * 10_000,
    "1" * 9_995 + "@c.us",
]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize("chat_id", BAD_CHAT_IDS, ids=lambda c: c[:20])
async def test_send_refuses_bad_chat_ids(offline_gateway, tokens, chat_id):
    response = await offline_gateway.post(
        "/api/v1/waha/messages", json={"chatId": chat_id, "text": "hi"}, headers=tokens.auth()
    )
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize("chat_id", BAD_CHAT_IDS, ids=lambda c: c[:20])
async def test_message_list_refuses_bad_chat_ids(offline_gateway, tokens, chat_id):
    response = await offline_gateway.get("/api/v1/waha/messages", params={"chatId": chat_id}, headers=tokens.auth())
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        {"chatId": "123@c.us", "text": "hi", "userId": "bob"},
        {"chatId": "123@c.us", "text": "hi", "session": "wf_bob"},
        {"chatId": "123@c.us"},
        {"text": "hi"},
        {"chatId": "123@c.us", "text": ""},
        {"chatId": "123@c.us", "text": "x" * 65_537},
        {"chatId": 123, "text": "hi"},
        ["not", "an", "object"],
    ],
)
async def test_send_refuses_bad_bodies(offline_gateway, tokens, body):
    response = await offline_gateway.post("/api/v1/waha/messages", json=body, headers=tokens.auth())
    assert_error(response, 422, "invalid_request")


async def test_send_refuses_a_body_that_is_not_json(offline_gateway, tokens):
    response = await offline_gateway.post(
        "/api/v1/waha/messages", content=b"{nope", headers={**tokens.auth(), "Content-Type": "application/json"}
    )
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize("key", ["has space", "slash/no", "ü".encode(), "x" * 129, ""])
async def test_send_refuses_bad_idempotency_keys(offline_gateway, tokens, key):
    response = await offline_gateway.post(
        "/api/v1/waha/messages",
        json={"chatId": "123@c.us", "text": "hi"},
        headers={**tokens.auth(), "Idempotency-Key": key},
    )
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/waha/chats?limit=0",
        "/api/v1/waha/chats?limit=201",
        "/api/v1/waha/chats?limit=ten",
        "/api/v1/waha/chats?userId=bob",
        "/api/v1/waha/groups?cursor=" + "c" * 513,
        "/api/v1/waha/contacts?limit=-1",
        "/api/v1/waha/messages",
        "/api/v1/waha/messages?chatId=123@c.us&limit=1000",
        "/api/v1/waha/qr?format=gif",
    ],
)
async def test_bad_query_parameters(offline_gateway, tokens, path):
    assert_error(await offline_gateway.get(path, headers=tokens.auth()), 422, "invalid_request")


async def test_unknown_paths_and_methods_answer_json(offline_gateway, tokens):
    assert_error(await offline_gateway.get("/api/v1/waha/nope", headers=tokens.auth()), 404, "not_found")
    assert_error(await offline_gateway.post("/api/v1/waha/session/explode", headers=tokens.auth()), 404, "not_found")
    assert_error(await offline_gateway.delete("/api/v1/waha/status", headers=tokens.auth()), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/waha/status", None),
        ("GET", "/api/v1/waha/qr", None),
        ("POST", "/api/v1/waha/session/start", None),
        ("POST", "/api/v1/waha/messages", {"chatId": "123@c.us", "text": "hi"}),
        ("GET", "/api/v1/waha/chats", None),
        ("GET", "/api/v1/waha/messages?chatId=123@c.us", None),
    ],
)
async def test_broker_unreachable_answers_503(offline_gateway, tokens, method, path, body):
    response = await offline_gateway.request(method, path, json=body, headers=tokens.auth())
    assert_error(response, 503, "broker_unavailable")
    assert response.headers["retry-after"] == "1"


async def test_ops_endpoints_while_the_broker_is_unreachable(offline_gateway):
    assert (await offline_gateway.get("/healthz")).json() == {"status": "ok"}
    ready = await offline_gateway.get("/readyz")
    assert ready.status_code == 503 and ready.json()["failing"] == ["rabbitmq"]
    await offline_gateway.get("/api/v1/waha/status")
    metrics = (await offline_gateway.get("/metrics")).text
    assert 'gateway_http_requests_total{method="GET",route="/api/v1/waha/status",status="401"}' in metrics


async def test_openapi_documents_the_api(offline_gateway):
    spec = (await offline_gateway.get("/openapi.json")).json()
    for path in ["/api/v1/waha/status", "/api/v1/waha/qr", "/api/v1/waha/messages", "/api/v1/waha/session/start",
                 "/api/v1/waha/chats", "/api/v1/waha/groups", "/api/v1/waha/contacts", "/api/v1/admin/sessions"]:
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert (await offline_gateway.get("/docs")).status_code == 200
