"""The HTTP side with no RabbitMQ at all (its URL points to a closed port): everything refused
before publishing behaves the same, and anything that would be published is answered 503."""

import gc
import json

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from starlette.responses import JSONResponse

from fleet_devtools.localdev import free_port
from webhook_ingest.app import create_app
from webhook_ingest.routes import send_json


def webhooks_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("webhook_ingest_webhooks_total", {"outcome": outcome}) or 0.0


@pytest.fixture
async def offline(run_app, settings_for):
    """The app with RabbitMQ unreachable, and a small body cap."""
    async with run_app(settings_for(f"amqp://guest:guest@127.0.0.1:{free_port()}/", webhook_max_bytes=4096)) as client:
        yield client


async def test_starts_and_is_alive_but_not_ready_without_rabbitmq(offline):
    assert (await offline.get("/healthz")).json() == {"status": "ok"}
    ready = await offline.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "failing": ["rabbitmq"]}


async def test_publishable_webhook_gets_503_so_waha_retries(offline, waha):
    before = webhooks_counted("unavailable")
    response = await waha.post(offline, waha.webhook("message.any", waha.message()))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"
    assert response.headers["retry-after"]
    assert webhooks_counted("unavailable") == before + 1


async def test_unknown_session_webhook_gets_503_too(offline, waha):
    response = await waha.post(offline, waha.webhook("message", waha.message(), session="wf_bob", metadata=None))
    assert response.status_code == 503


async def test_missing_or_wrong_signature_is_401(offline, waha):
    body = waha.encode(waha.webhook("message", waha.message()))
    before = webhooks_counted("invalid_signature")
    missing = await offline.post("/webhooks/waha/wf_alice", content=body, headers={"content-type": "application/json"})
    wrong_key = await waha.post(offline, body, key="not-the-key")
    tampered = await offline.post(
        "/webhooks/waha", content=body.replace(b"hi", b"ho"), headers=waha.headers(body)
    )
    for response in (missing, wrong_key, tampered):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    assert webhooks_counted("invalid_signature") == before + 3


async def test_signature_is_checked_before_parsing(offline):
    response = await offline.post("/webhooks/waha/wf_alice", content=b"{not json", headers={"x-webhook-hmac": "00"})
    assert response.status_code == 401


async def test_invalid_json_is_400(offline, waha):
    response = await waha.post(offline, b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_missing_envelope_fields_are_422(offline, waha):
    body = waha.webhook("message", waha.message())
    del body["session"]
    response = await waha.post(offline, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_webhook"
    assert "session" in error["message"]


async def test_missing_payload_fields_of_a_known_session_are_422(offline, waha):
    payload = waha.message()
    del payload["fromMe"]
    response = await waha.post(offline, waha.webhook("message", payload))
    assert response.status_code == 422
    assert "fromMe" in response.json()["error"]["message"]


async def test_contract_violation_is_422(offline, waha):
    response = await waha.post(offline, waha.webhook("message", waha.message(id="x" * 1000)))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contract_violation"


async def test_other_events_are_acknowledged_and_ignored(offline, waha):
    before = webhooks_counted("ignored")
    for event in ("presence.update", "poll.vote", "call.received", "engine.event"):
        response = await waha.post(offline, waha.webhook(event, {"id": "x"}))
        assert response.status_code == 200
        assert response.json() == {"status": "ignored"}
    assert webhooks_counted("ignored") == before + 4


async def test_declared_too_large_body_is_413_without_reading_it(offline):
    before = webhooks_counted("too_large")
    response = await offline.post(
        "/webhooks/waha", content=b"x" * 5000, headers={"x-webhook-hmac": "whatever"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert webhooks_counted("too_large") == before + 1


async def test_streamed_too_large_body_is_413(offline):
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(1000):  # up to 1 MB, far beyond the 4 KiB cap
            sent += 1
            yield b"x" * 1000

    response = await offline.post("/webhooks/waha/wf_alice", content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert sent < 10  # refused as soon as the cap was passed, not after reading everything


async def test_body_exactly_at_the_cap_is_read(offline, waha):
    body = waha.webhook("presence.update", {"pad": ""})
    raw = waha.encode(body)
    body["payload"]["pad"] = "x" * (4096 - len(raw))
    raw = waha.encode(body)
    assert len(raw) == 4096
    assert (await waha.post(offline, raw)).status_code == 200


async def test_bad_content_length_is_400(offline):
    # h11 would refuse it on a real socket; an ASGI server might pass it through.
    transport_request = httpx.Request(
        "POST", "http://ingest/webhooks/waha", headers={"content-length": "abc"}, content=b"{}"
    )
    transport_request.headers["content-length"] = "abc"
    response = await offline.send(transport_request)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_content_length"


async def test_metrics_exposes_the_outcomes(offline):
    text = (await offline.get("/metrics")).text
    for outcome in ("published", "parked", "ignored", "invalid_signature", "too_large", "invalid", "unavailable"):
        assert f'webhook_ingest_webhooks_total{{outcome="{outcome}"}}' in text


async def test_other_methods_on_the_webhook_path_are_405(offline):
    response = await offline.get("/webhooks/waha")
    assert response.status_code == 405
    assert response.json() == {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}


async def test_a_client_gone_before_the_whole_body_is_400(settings_for, waha):
    """Straight on the ASGI app: a body cut short by an `http.disconnect` is refused as incomplete."""
    raw = waha.encode(waha.webhook("message", waha.message()))
    app = create_app(settings_for(f"amqp://guest:guest@127.0.0.1:{free_port()}/"))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        events = [{"type": "http.request", "body": raw[:10], "more_body": True}, {"type": "http.disconnect"}]
        sent: list[dict] = []

        async def receive() -> dict:
            return events.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/webhooks/waha/wf_alice", "raw_path": b"/webhooks/waha/wf_alice", "query_string": b"", "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in waha.headers(raw).items()],
            "client": ("127.0.0.1", 1), "server": ("ingest", 80),
        }
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "incomplete_body"


async def test_start_up_objects_are_kept_out_of_the_collector_while_serving(run_app, settings_for):
    assert gc.get_freeze_count() == 0
    async with run_app(settings_for(f"amqp://guest:guest@127.0.0.1:{free_port()}/")) as client:
        assert gc.get_freeze_count() > 0
        assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() == 0


async def test_an_unexpected_error_is_a_json_500_and_nothing_else_breaks(offline, waha, monkeypatch, caplog):
    """The webhook endpoint runs ahead of FastAPI's error middleware, so it gives the JSON 500 itself."""
    from webhook_ingest import mapping

    def broken(*_):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(mapping, "translate", broken)
    response = await waha.post(offline, waha.webhook("message", waha.message()))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert any(r.exc_info and "injected fault" in str(r.exc_info[1]) for r in caplog.records)
    monkeypatch.undo()
    assert (await waha.post(offline, waha.webhook("message", waha.message()))).status_code == 503


@pytest.mark.parametrize("content", [
    {"status": "published", "id": "6f1b0a52-5d8e-4f3c-9a57-0c1f4b2d7e11", "type": "message.received"},
    {"error": {"code": "invalid_json", "message": "body is not valid JSON: " + "".join(map(chr, range(128))) + "é😀\u2028"}},
    {"status": 5, "list": [1, None, True, False], "nested": {"\"key\\": "value"}},
])
async def test_answers_are_rendered_byte_for_byte_as_jsonresponse_renders_them(content):
    sent = []

    async def send(message):
        sent.append(message)

    await send_json(send, 400, content, {"Retry-After": "5"})
    expected = JSONResponse(content, 400, {"Retry-After": "5"})
    assert sent[1]["body"] == expected.body
    assert sorted(sent[0]["headers"]) == sorted(expected.raw_headers)
