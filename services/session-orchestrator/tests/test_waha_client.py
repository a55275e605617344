"""The WAHA client against a fake WAHA (an httpx transport answering like WAHA does)."""

import asyncio
import json
import time

import httpx
import pytest

from session_orchestrator.adapters.ports import WahaBadResponse, WahaNotFound, WahaRejected, WahaUnavailable, error_text
from session_orchestrator.adapters.waha_http import (
    RetryPolicy,
    WahaClient,
    retry_after_seconds,
    sent_message_id,
    sent_message_timestamp,
)

CHAT = "15550002222@c.us"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


# ---- response shapes -------------------------------------------------------------------------


def test_id_from_gows_answer():
    assert sent_message_id({"id": f"true_{CHAT}_3EB0AA", "_data": {}}, CHAT) == f"true_{CHAT}_3EB0AA"


def test_id_from_webjs_answer():
    body = {"id": {"fromMe": True, "remote": CHAT, "id": "3EB0BB", "_serialized": f"true_{CHAT}_3EB0BB"}}
    assert sent_message_id(body, CHAT) == f"true_{CHAT}_3EB0BB"


def test_id_from_noweb_answer():
    body = {
        "key": {"remoteJid": "15550002222@s.whatsapp.net", "fromMe": True, "id": "3EB0CC"},
        "message": {"extendedTextMessage": {"text": "hi"}},
        "messageTimestamp": "1738070128",
        "status": "PENDING",
    }
    assert sent_message_id(body, CHAT) == f"true_{CHAT}_3EB0CC"
    assert sent_message_timestamp(body, 0) == 1738070128


@pytest.mark.parametrize("body", [None, {}, {"id": ""}, {"id": {"id": "x"}}, {"key": {}}, "ok", []])
def test_no_id(body):
    assert sent_message_id(body, CHAT) is None


def test_timestamp_fallbacks():
    assert sent_message_timestamp({"timestamp": 1700000000}, 5) == 1700000000
    assert sent_message_timestamp({"timestamp": 1700000000123}, 5) == 1700000000  # milliseconds
    assert sent_message_timestamp({"_data": {"timestamp": "1700000001"}}, 5) == 1700000001
    assert sent_message_timestamp({"timestamp": "soon"}, 5) == 5


def test_error_text_of_the_three_shapes():
    assert error_text({"message": "Session not found", "error": "Not Found", "statusCode": 404}) == "Session not found"
    assert error_text({"message": ["name must match"], "error": "Bad Request", "statusCode": 400}) == "name must match"
    assert error_text({"error": "Session status is not as expected", "status": "STARTING"}) == "Session status is not as expected"
    assert error_text({"statusCode": 500, "exception": {"message": "boom"}}) == "boom"


def test_retry_after():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 3) == pytest.approx(3.0)


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(attempts=5, base=0.1, cap=0.4)
    for _ in range(50):
        assert 0.05 <= policy.backoff(1) <= 0.1
        assert 0.2 <= policy.backoff(3) <= 0.4
        assert 0.2 <= policy.backoff(9) <= 0.4
    assert policy.backoff(1, retry_after=0.7) == pytest.approx(0.7)  # Retry-After wins over the cap


# ---- transport behaviour ---------------------------------------------------------------------


class FakeWaha:
    """Answers from a script of (status, body, headers) per request, and records the requests."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        status, body, *rest = item
        headers = rest[0] if rest else {}
        return httpx.Response(status, json=body, headers=headers)


def client_for(fake: FakeWaha, **kw) -> WahaClient:
    return WahaClient("http://waha", "secret-key", retry=kw.pop("retry", FAST), transport=httpx.MockTransport(fake), **kw)


SESSION = {"name": "wf_alice", "status": "STARTING", "config": {}}


async def test_api_key_and_paths():
    fake = FakeWaha((201, SESSION))
    waha = client_for(fake)
    info = await waha.create_session("wf_alice", {"metadata": {"fleet.userId": "alice"}})
    assert info["status"] == "STARTING"
    req = fake.requests[0]
    assert req.headers["X-Api-Key"] == "secret-key"
    assert (req.method, req.url.path) == ("POST", "/api/sessions")
    assert json.loads(req.content) == {"name": "wf_alice", "start": True, "config": {"metadata": {"fleet.userId": "alice"}}}
    await waha.aclose()


async def test_5xx_is_retried_then_succeeds():
    fake = FakeWaha((502, {"statusCode": 502}), (500, {"statusCode": 500}), (200, SESSION))
    waha = client_for(fake)
    assert (await waha.get_session("wf_alice"))["name"] == "wf_alice"
    assert len(fake.requests) == 3
    await waha.aclose()


async def test_retries_are_bounded():
    fake = FakeWaha((503, {"message": "down"}))
    waha = client_for(fake)
    with pytest.raises(WahaUnavailable) as info:
        await waha.get_session("wf_alice")
    assert info.value.status == 503
    assert info.value.not_done
    assert len(fake.requests) == FAST.attempts
    await waha.aclose()


async def test_retry_after_is_honoured():
    fake = FakeWaha((429, {"message": "Too Many Requests"}, {"Retry-After": "0.3"}), (200, SESSION))
    waha = client_for(fake)
    started = time.monotonic()
    await waha.get_session("wf_alice")
    assert time.monotonic() - started >= 0.3
    assert len(fake.requests) == 2
    await waha.aclose()


async def test_timeouts_and_refused_connections_are_retried():
    fake = FakeWaha(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), (200, SESSION))
    waha = client_for(fake)
    assert (await waha.get_session("wf_alice"))["status"] == "STARTING"
    assert len(fake.requests) == 3
    await waha.aclose()


async def test_a_send_is_not_repeated_when_waha_may_have_sent_it():
    for first in ((500, {"statusCode": 500}), httpx.ReadTimeout("slow")):
        fake = FakeWaha(first, (201, {"id": f"true_{CHAT}_X"}))
        waha = client_for(fake)
        with pytest.raises(WahaUnavailable) as info:
            await waha.send_text("wf_alice", CHAT, "hi")
        assert not info.value.not_done
        assert len(fake.requests) == 1
        await waha.aclose()


async def test_a_send_is_repeated_when_waha_certainly_did_not_send():
    fake = FakeWaha(httpx.ConnectError("refused"), (503, {"message": "busy"}), (201, {"id": f"true_{CHAT}_X", "timestamp": 1700000000}))
    waha = client_for(fake)
    sent = await waha.send_text("wf_alice", CHAT, "hi", reply_to="false_1@c.us_Q")
    assert sent.id == f"true_{CHAT}_X"
    assert sent.timestamp == 1700000000
    assert len(fake.requests) == 3
    assert json.loads(fake.requests[-1].content) == {"session": "wf_alice", "chatId": CHAT, "text": "hi", "reply_to": "false_1@c.us_Q"}
    await waha.aclose()


async def test_4xx_are_typed_and_not_retried():
    fake = FakeWaha((404, {"message": "Session not found", "error": "Not Found", "statusCode": 404}))
    waha = client_for(fake)
    with pytest.raises(WahaNotFound):
        await waha.session_action("wf_alice", "start")
    fake.script = [(422, {"message": "Session 'wf_alice' already exists. Use PUT to update it.", "statusCode": 422})]
    with pytest.raises(WahaRejected) as info:
        await waha.create_session("wf_alice", {})
    assert info.value.already_exists
    fake.script = [(422, {"error": "Session status is not as expected", "session": "wf_alice", "status": "SCAN_QR_CODE", "expected": ["WORKING"]})]
    with pytest.raises(WahaRejected) as info:
        await waha.send_text("wf_alice", CHAT, "hi")
    assert info.value.session_status == "SCAN_QR_CODE"
    assert not info.value.already_exists
    assert len(fake.requests) == 3
    await waha.aclose()


async def test_a_send_answer_without_id_is_a_bad_response():
    waha = client_for(FakeWaha((201, {})))
    with pytest.raises(WahaBadResponse):
        await waha.send_text("wf_alice", CHAT, "hi")
    await waha.aclose()


async def test_retrying_stops_at_the_deadline():
    fake = FakeWaha((503, {"message": "down"}, {"Retry-After": "5"}))
    waha = client_for(fake, retry=RetryPolicy(attempts=5, base=0.01, cap=5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WahaUnavailable):
        await waha.get_session("wf_alice", deadline=loop.time() + 1.0)
    assert loop.time() - started < 1.0
    assert len(fake.requests) == 1
    await waha.aclose()


async def test_qr_calls():
    fake = FakeWaha((200, {"value": "2@abc"}))
    waha = client_for(fake)
    assert await waha.qr_value("wf_alice") == "2@abc"
    assert fake.requests[0].url.params["format"] == "raw"
    fake.script = [(200, {"mimetype": "image/png", "data": "iVBORw0KGgo="})]
    assert await waha.qr_image("wf_alice") == ("image/png", "iVBORw0KGgo=")
    assert fake.requests[1].url.params["format"] == "image"
    assert fake.requests[1].headers["Accept"] == "application/json"
    await waha.aclose()
