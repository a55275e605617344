"""Issue 22, point 4: which webhooks are believed. Each session's key speaks for that session only,
the fleet key only where allowed, a signed webhook only within its time window; bodies nested to
break the parser and ids the API could not name again are refused. Refused means nothing published."""

import json
import time

import pytest

from fleet_shared.contracts import deterministic_id
from fleet_shared.waha import session_webhook_key, signed_headers

from .conftest import KEY
from .test_integration import bind, counted, next_message

pytestmark = pytest.mark.integration


@pytest.fixture
def strict(rabbitmq_url, topology, run_app, settings_for):
    """webhook-ingest with the production window (WEBHOOK_MAX_AGE 10 min, skew 1 min), on the real broker."""
    def make(**overrides):
        settings = settings_for(rabbitmq_url, topology.prefix, topology.partitions,
                                webhook_max_age="10m", **overrides)
        return run_app(settings)

    return make


def now_ms() -> int:
    return int(time.time() * 1000)


async def only_this_published(amqp, events_queue, control: dict) -> None:
    """The first message event on `events_queue` is `control`'s: nothing refused before it was published."""
    while True:
        message = await next_message(events_queue)
        if message.routing_key.endswith(".session.active"):
            continue
        assert message.message_id == deterministic_id("alice", "message", control["payload"]["id"])
        return


async def test_a_sessions_key_speaks_for_that_session_only(strict, waha, amqp, topology):
    events = await bind(amqp, topology.events, "#")
    async with strict() as ingest:
        bobs = waha.encode(waha.webhook("message", waha.message(body="forged for bob"), user_id="bob", timestamp=now_ms()))
        alices_key = session_webhook_key(KEY, "wf_alice")
        as_alice = await ingest.post("/webhooks/waha/wf_alice", content=bobs, headers=signed_headers(alices_key, bobs))
        on_bobs_path = await ingest.post("/webhooks/waha/wf_bob", content=bobs, headers=signed_headers(alices_key, bobs))
        fleet_key = await ingest.post("/webhooks/waha/wf_bob", content=bobs, headers=signed_headers(KEY, bobs))
        for refused in (as_alice, on_bobs_path, fleet_key):
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_signature"), refused.text
        assert "another session" in as_alice.json()["error"]["message"]

        control = waha.webhook("message", waha.message(body="alice's own", raw_id="C" * 20), timestamp=now_ms())
        assert (await waha.post(ingest, control)).status_code == 200
    await only_this_published(amqp, events, control)


async def test_the_fleet_key_is_taken_only_where_an_operator_allows_it(strict, waha):
    body = waha.encode(waha.webhook("message", waha.message(), timestamp=now_ms()))
    async with strict() as ingest:
        refused = await ingest.post("/webhooks/waha", content=body, headers=signed_headers(KEY, body))
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_signature")
        assert "/webhooks/waha/<session>" in refused.json()["error"]["message"]
    async with strict(webhook_accept_fleet_key=True) as upgrading:
        taken = await upgrading.post("/webhooks/waha", content=body, headers=signed_headers(KEY, body))
        assert taken.status_code == 200, taken.text


async def test_a_webhook_signed_long_ago_or_ahead_is_refused_however_often_replayed(strict, waha, amqp, topology):
    events = await bind(amqp, topology.events, "#")
    before = counted("stale")
    async with strict() as ingest:
        from_2020 = waha.webhook("message", waha.message(body="replayed"), timestamp=1_580_000_000_000)
        ahead = waha.webhook("message", waha.message(body="ahead", raw_id="F" * 20), timestamp=now_ms() + 5 * 60_000)
        for _ in range(3):
            replay = await waha.post(ingest, from_2020)
            assert (replay.status_code, replay.json()["error"]["code"]) == (400, "stale_webhook")
        future = await waha.post(ingest, ahead)
        assert (future.status_code, future.json()["error"]["code"]) == (400, "stale_webhook")
        # WAHA's own retries come within seconds; skew within a minute is tolerated.
        control = waha.webhook("message", waha.message(body="fresh", raw_id="C" * 20), timestamp=now_ms() + 30_000)
        assert (await waha.post(ingest, control)).status_code == 200
    assert counted("stale") == before + 4
    await only_this_published(amqp, events, control)


async def test_a_body_nested_to_break_the_parser_is_400(strict, waha):
    deep = b'{"event": "message", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with strict(webhook_max_bytes=1024 * 1024) as ingest:
        response = await waha.post(ingest, deep)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json"), response.text


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({"from": "<img src=x onerror=alert(1)>@c.us", "id": "false_<img src=x onerror=alert(1)>@c.us_AAA"}, "chat id"),
        ({"id": "not a serialized id"}, "message id"),
        ({"from": "11111111111@example.com", "id": "false_11111111111@example.com_AAA"}, "chat id"),
    ],
)
async def test_ids_the_api_could_not_name_again_are_refused_not_stored(strict, waha, amqp, topology, message, why):
    events = await bind(amqp, topology.events, "#")
    async with strict() as ingest:
        bad = waha.webhook("message", {**waha.message(), **message}, timestamp=now_ms())
        response = await waha.post(ingest, bad)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "contract_violation"), response.text
        assert why in response.json()["error"]["message"]
        control = waha.webhook("message", waha.message(body="fine", raw_id="C" * 20), timestamp=now_ms())
        assert (await waha.post(ingest, control)).status_code == 200
    await only_this_published(amqp, events, control)


async def test_a_path_that_names_no_session_is_404(strict):
    async with strict() as ingest:
        for path in ("/webhooks/waha/", "/webhooks/waha/a/b", "/webhooks/waha/" + "x" * 60, "/webhooks/waha/wf%2Ealice"):
            response = await ingest.post(path, content=json.dumps({}).encode())
            assert response.status_code == 404, (path, response.text)
