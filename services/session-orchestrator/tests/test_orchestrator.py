"""The orchestrator end to end: real RabbitMQ, real SecantusDB, the WAHA emulator over HTTP."""

import asyncio
import base64
import time
from datetime import timedelta

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import deterministic_id, envelope
from fleet_shared.contracts.commands import (
    GetQr,
    GetSession,
    LogoutSession,
    RestartSession,
    SendMessage,
    StartSession,
    StopSession,
)
from fleet_shared.contracts.events import SessionStatusReported
from fleet_shared.routing import one_user_binding
from fleet_shared.waha import session_webhook_key

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOB_CHAT = "15550009999@c.us"


async def test_alice_and_bob_get_their_own_qr_at_the_same_time(orchestrator, webhook_sink):
    alice, bob = await asyncio.gather(orchestrator.ask(GetQr(), "alice"), orchestrator.ask(GetQr(), "bob"))
    for reply in (alice, bob):
        assert reply.ok, reply
        assert reply.data["status"] == "SCAN_QR_CODE"
        qr = reply.data["qr"]
        assert qr["mimetype"] == "image/png"
        assert base64.b64decode(qr["data"]).startswith(PNG_SIGNATURE)
        assert qr["value"]
    assert alice.data["qr"]["value"] != bob.data["qr"]["value"]

    # Each session was created for its user, with the per-session webhook to webhook-ingest.
    info = await orchestrator.waha.session("wf_alice")
    assert info["config"]["metadata"] == {"fleet.userId": "alice"}
    (hook,) = info["config"]["webhooks"]
    assert hook["url"] == f"{orchestrator.settings.webhook_url}/wf_alice"
    assert set(hook["events"]) == {
        "message", "message.any", "message.ack", "message.reaction", "message.edited", "message.revoked",
        "session.status", "group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants",
    }
    assert hook["hmac"] == {"key": session_webhook_key(orchestrator.settings.webhook_hmac_key, "wf_alice")}
    assert hook["retries"] == {"policy": "constant", "delaySeconds": 2, "attempts": 15}
    # ... and WAHA really calls it, signed.
    hook_call = await webhook_sink.wait_for_event("session.status", session="wf_alice")
    assert hook_call["metadata"] == {"fleet.userId": "alice"}
    assert any("x-webhook-hmac" in r.headers for r in webhook_sink.requests)

    # Asking for a QR is activity; the registry knows the session (its status comes from webhooks).
    view = await orchestrator.status("alice")
    assert view["session"] == "wf_alice" and view["lastActivity"] is not None


async def test_five_concurrent_qr_requests_create_exactly_one_session(orchestrator):
    replies = await asyncio.gather(*(orchestrator.ask(GetQr(), "carol") for _ in range(5)))
    assert all(r.ok and r.data["status"] == "SCAN_QR_CODE" for r in replies), replies
    assert len({r.data["qr"]["value"] for r in replies}) == 1
    creates = await orchestrator.waha.calls(method="POST", path="/api/sessions")
    assert [c["session"] for c in creates] == ["wf_carol"]


async def test_scan_makes_the_registry_working_and_announces_it(orchestrator):
    tap = await orchestrator.tap(one_user_binding("alice"))
    other = await orchestrator.tap(one_user_binding("bob"))

    view = await orchestrator.link("alice", phone="15550001111")
    assert view["phoneNumber"] == "15550001111"
    assert view["lastError"] is None and view["updatedAt"] is not None

    working = await tap.wait_for("session.status_changed", lambda e: e["data"]["status"] == "WORKING")
    assert working["userId"] == "alice" and working["session"] == "wf_alice"
    assert working["data"]["previousStatus"] == "SCAN_QR_CODE"
    assert working["data"]["phoneNumber"] == "15550001111"
    hooks = await orchestrator.waha.status_events("wf_alice")
    assert working["id"] == deterministic_id("alice", "status", "WORKING", str(hooks[-1]["timestamp"]))
    changes = [e["data"]["status"] for e in tap.of_type("session.status_changed")]
    assert changes == ["STARTING", "SCAN_QR_CODE", "WORKING"]

    # Repeated webhooks (ingest publishes a duplicate with the same id) and a late, older one
    # change nothing and announce nothing ...
    await orchestrator.report_from_waha("alice")
    late = SessionStatusReported(status="SCAN_QR_CODE", reported_at_ms=hooks[0]["timestamp"], waha_event_id="evt_late")
    await orchestrator.report("alice", late)
    # ... while the next real change is applied: the phone unlinks.
    r = await orchestrator.waha.http.post("/_emulator/sessions/wf_alice/disconnect")
    assert r.status_code == 201, r.text
    await wait_until(lambda: orchestrator.waha_last_status("alice", "FAILED"), 10, what="WAHA's FAILED webhook")
    await orchestrator.report_from_waha("alice", only_last=True)
    failed = await tap.wait_for("session.status_changed", lambda e: e["data"]["status"] == "FAILED")
    assert failed["data"]["previousStatus"] == "WORKING"
    # The tap receives in publish order: nothing was announced between WORKING and FAILED.
    changes = [e["data"]["status"] for e in tap.of_type("session.status_changed")]
    assert changes == ["STARTING", "SCAN_QR_CODE", "WORKING", "FAILED"]
    view = await orchestrator.status("alice")
    assert view["status"] == "FAILED" and view["lastError"]
    assert other.received == []  # bob's binding sees nothing of alice


async def test_qr_when_working_answers_working(orchestrator):
    await orchestrator.link("dave", phone="15550004444")
    # A QR request now answers WORKING without a QR.
    reply = await orchestrator.ask(GetQr(), "dave")
    assert reply.ok and reply.data == {"status": "WORKING", "qr": None}


async def test_a_new_qr_is_announced(orchestrator):
    tap = await orchestrator.tap(one_user_binding("erin"))
    reply = await orchestrator.ask(GetQr(), "erin")
    assert reply.ok, reply
    await orchestrator.report_from_waha("erin")
    announced = await tap.wait_for("session.qr_updated")
    assert announced["data"]["value"] == reply.data["qr"]["value"]
    assert announced["id"] == deterministic_id("erin", "qr", reply.data["qr"]["value"])


async def test_a_user_never_seen_is_stopped(orchestrator):
    view = await orchestrator.status("nobody")
    assert view == {
        "userId": "nobody",
        "session": "wf_nobody",
        "status": "STOPPED",
        "phoneNumber": None,
        "lastError": None,
        "lastActivity": None,
        "updatedAt": None,
        "historyImport": {"state": "idle", "chats": 0, "messages": 0, "error": None, "startedAt": None, "finishedAt": None},
    }
    # reading the status is not activity: still nothing recorded
    assert await orchestrator.runtime.registry.get("nobody") is None


async def test_send_while_not_working_is_409(orchestrator):
    reply = await orchestrator.ask(SendMessage(chat_id=BOB_CHAT, text="hello"), "frank")
    assert not reply.ok
    assert (reply.error.code, reply.error.status) == ("session_not_working", 409)
    # with a session waiting for its QR scan, too
    assert (await orchestrator.ask(GetQr(), "frank")).ok
    reply = await orchestrator.ask(SendMessage(chat_id=BOB_CHAT, text="hello"), "frank")
    assert (reply.error.code, reply.error.status) == ("session_not_working", 409)
    assert await orchestrator.waha.calls(method="POST", path="/api/sendText") == []


async def test_send_while_working_and_idempotency(orchestrator):
    tap = await orchestrator.tap("user.*.message.*")
    await orchestrator.link("alice", phone="15550001111")

    send = SendMessage(chat_id=BOB_CHAT, text="hello bob", idempotency_key="k-1")
    first = await orchestrator.ask(send, "alice")
    assert first.ok, first
    assert set(first.data) == {"id", "chatId", "timestamp"}
    assert first.data["chatId"] == BOB_CHAT
    assert first.data["id"].startswith(f"true_{BOB_CHAT}_")
    assert abs(first.data["timestamp"] - time.time()) < 60

    sent = await orchestrator.waha.sent("wf_alice")
    assert [(m["chatId"], m["text"]) for m in sent] == [(BOB_CHAT, "hello bob")]

    again = await orchestrator.ask(send, "alice")
    assert again.ok and again.data == first.data
    assert len(await orchestrator.waha.sent("wf_alice")) == 1

    # the same key for another message is refused; a new key sends again
    other = await orchestrator.ask(SendMessage(chat_id=BOB_CHAT, text="something else", idempotency_key="k-1"), "alice")
    assert (other.error.code, other.error.status) == ("idempotency_key_reused", 422)
    assert (await orchestrator.ask(SendMessage(chat_id=BOB_CHAT, text="hello bob", idempotency_key="k-2"), "alice")).ok
    assert len(await orchestrator.waha.sent("wf_alice")) == 2

    # message.sent, with the id webhook-ingest gives the same message
    event = await tap.wait_for("message.sent", lambda e: e["data"]["id"] == first.data["id"])
    assert event["id"] == deterministic_id("alice", "message", first.data["id"])
    assert event["userId"] == "alice"
    data = event["data"]
    assert (data["fromMe"], data["chatId"], data["body"], data["to"]) == (True, BOB_CHAT, "hello bob", BOB_CHAT)
    assert data["from"] == "15550001111@c.us"
    assert data["ack"] is not None
    assert len([e for e in tap.of_type("message.sent") if e["data"]["id"] == first.data["id"]]) == 1

    # sending is activity
    view = await orchestrator.status("alice")
    assert view["lastActivity"] is not None


async def test_one_users_commands_apply_in_arrival_order(orchestrator):
    await orchestrator.link("grace", phone="15550005555")
    texts = [f"message {i}" for i in range(30)]
    for text in texts:  # published one after the other, nobody waits for the replies
        await orchestrator.publish(orchestrator.topology.commands, envelope(SendMessage(chat_id=BOB_CHAT, text=text), "grace"))

    async def all_sent() -> list[dict] | None:
        sent = await orchestrator.waha.sent("wf_grace")
        return sent if len(sent) >= len(texts) else None

    sent = await wait_until(all_sent, 20, what="30 messages sent")
    assert [m["text"] for m in sent] == texts


async def test_stop_restart_logout(orchestrator):
    # unknown session: stopping and logging out are no-ops
    for command in (StopSession(), LogoutSession()):
        reply = await orchestrator.ask(command, "henry")
        assert reply.ok and reply.data == {"status": "STOPPED"}, reply
    assert await orchestrator.waha.calls(method="POST", path="/api/sessions") == []

    reply = await orchestrator.ask(StartSession(), "henry")
    assert reply.ok and reply.data["status"] in ("STARTING", "SCAN_QR_CODE"), reply
    reply = await orchestrator.ask(StopSession(), "henry")
    assert reply.ok and reply.data == {"status": "STOPPED"}
    assert (await orchestrator.waha.session("wf_henry"))["status"] == "STOPPED"
    reply = await orchestrator.ask(StartSession(), "henry")  # start again: the same session
    assert reply.ok and reply.data["status"] in ("STARTING", "SCAN_QR_CODE"), reply
    reply = await orchestrator.ask(RestartSession(), "henry")
    assert reply.ok and reply.data["status"] in ("STARTING", "SCAN_QR_CODE"), reply
    reply = await orchestrator.ask(LogoutSession(), "henry")
    assert reply.ok and reply.data["status"] in ("STOPPED", "STARTING", "SCAN_QR_CODE"), reply
    assert len(await orchestrator.waha.calls(method="POST", path="/api/sessions")) == 1
    actions = [c["path"].rsplit("/", 1)[-1] for c in await orchestrator.waha.calls(method="POST", session="wf_henry")]
    assert actions == ["stop", "logout", "sessions", "stop", "start", "restart", "logout"]


async def test_restart_of_a_session_never_created_creates_it(orchestrator):
    reply = await orchestrator.ask(RestartSession(), "irene")
    assert reply.ok and reply.data["status"] in ("STARTING", "SCAN_QR_CODE"), reply
    assert [c["session"] for c in await orchestrator.waha.calls(method="POST", path="/api/sessions")] == ["wf_irene"]


async def test_waha_unavailable_is_a_503_and_recorded(orchestrator):
    await orchestrator.waha.faults(status=503, rate=1)
    reply = await orchestrator.ask(GetQr(), "judy")
    assert not reply.ok
    assert (reply.error.code, reply.error.status) == ("waha_unavailable", 503)
    # bounded: the configured number of attempts, no more
    assert len(await orchestrator.waha.calls(session="wf_judy")) == orchestrator.settings.waha_attempts
    view = await orchestrator.status("judy")
    assert "503" in view["lastError"]

    await orchestrator.waha.faults()
    reply = await orchestrator.ask(GetQr(), "judy")
    assert reply.ok and reply.data["status"] == "SCAN_QR_CODE"
    assert (await orchestrator.status("judy"))["lastError"] is None


async def test_answered_commands_are_acked_not_dead_lettered(orchestrator):
    for command in (StopSession(), StartSession(), GetQr(), SendMessage(chat_id=BOB_CHAT, text="x")):
        assert (await orchestrator.ask(command, "lena")).ok or command.TYPE == "message.send"
    assert (await orchestrator.ask(GetSession(), "lena")).ok
    assert await orchestrator.dead_letters() == 0


async def test_a_message_for_another_user_than_its_routing_key_is_refused(orchestrator):
    forged = envelope(StartSession(), "mallory")
    reply = await orchestrator.request_raw(forged.wire(), routing_key="user.alice.session.start")
    assert not reply["ok"]
    assert (reply["error"]["code"], reply["error"]["status"]) == ("invalid_message", 400)
    garbage = {"id": "x", "type": "session.start", "userId": "alice", "data": "nope"}
    reply = await orchestrator.request_raw(garbage, routing_key="user.alice.session.start")
    assert reply["error"]["code"] == "invalid_message"
    assert await orchestrator.waha.calls(method="POST") == []
    assert await orchestrator.runtime.registry.get("alice") is None

    # Without anyone waiting for an answer, the forged message goes to the dead-letter queue.
    await orchestrator.publish(orchestrator.topology.commands, forged, routing_key="user.alice.session.start")
    await wait_until(lambda: orchestrator.dead_letters(), 10, what="the forged message dead-lettered")
    assert await orchestrator.runtime.registry.get("alice") is None


async def test_ops_endpoints(orchestrator):
    assert (await orchestrator.ops.get("/healthz")).json() == {"status": "ok"}
    ready = await orchestrator.ops.get("/readyz")
    assert ready.status_code == 200, ready.text
    await orchestrator.link("kim", phone="15550006666")
    metrics = (await orchestrator.ops.get("/metrics")).text
    assert 'orchestrator_sessions{status="WORKING"} 1.0' in metrics
    assert "orchestrator_waha_calls_total" in metrics


async def test_readyz_says_which_dependency_fails(orchestrator):
    await orchestrator.waha.server.stop()
    ready = await orchestrator.ops.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["waha"]


async def test_a_slow_waha_for_one_user_delays_no_other_user(single_partition, make_waha, make_orchestrator):
    """All users share ONE single-active-consumer partition here; WAHA takes 3 s on each of
    slowpoke's calls. bob's commands and queries are answered meanwhile."""
    delay = 3.0
    waha = await make_waha({"wf_slowpoke"}, delay)
    orchestrator = await make_orchestrator(single_partition, waha, request_timeout=timedelta(seconds=20))

    slow_task = asyncio.create_task(orchestrator.ask(GetQr(), "slowpoke", timeout=30))
    await wait_until(lambda: _arrived(waha.slow, "wf_slowpoke"), 10, what="slowpoke's first WAHA call")

    started = time.monotonic()
    status = await orchestrator.ask(GetSession(), "bob")
    started_bob = await orchestrator.ask(StartSession(), "bob")  # a command, on the same partition
    elapsed = time.monotonic() - started
    assert status.ok and started_bob.ok, (status, started_bob)
    assert elapsed < delay / 2, f"bob waited {elapsed:.2f}s behind slowpoke"
    assert not slow_task.done()

    reply = await slow_task
    assert reply.ok and reply.data["status"] == "SCAN_QR_CODE", reply


async def _arrived(wrapper, name: str) -> bool:
    return wrapper.arrived.get(name, 0) > 0
