"""`message.send` against the fakes: one WhatsApp message per Idempotency-Key, whatever is repeated,
redelivered, or cut short by a crash."""

import pytest

from fleet_shared.contracts import deterministic_id
from fleet_shared.contracts.commands import SendMessage, StopSession
from fleet_shared.contracts.events import MessageSent
from session_orchestrator.adapters.ports import WahaRejected, WahaUnavailable
from session_orchestrator.domain.sending import SENDING_MARGIN, claim_key, fingerprint

from .conftest import Crash

CHAT = "4915112345678@c.us"


def send(text: str = "hello", key: str | None = "k-1") -> SendMessage:
    return SendMessage(chat_id=CHAT, text=text, idempotency_key=key)


@pytest.fixture
async def linked(harness):
    await harness.link("alice", "15550001111")
    return harness


async def test_a_send_goes_out_once_and_is_announced_with_the_id_ingest_gives_it(linked):
    reply = await linked.command(send(), "alice")

    assert reply.ok, reply
    [made] = linked.waha.sent
    assert reply.data == {"id": made["id"], "chatId": CHAT, "timestamp": reply.data["timestamp"]}
    [event] = linked.events.of_type("message.sent", "alice")
    message: MessageSent = event.data
    assert (message.id, message.body, message.from_, message.to, message.from_me) == (
        made["id"], "hello", "15550001111@c.us", CHAT, True
    )
    assert event.id == deterministic_id("alice", "message", made["id"])


async def test_the_same_key_answers_the_same_result_and_sends_nothing_more(linked):
    first = await linked.command(send(), "alice")
    again = await linked.command(send(), "alice")  # a client retry: another command, the same key

    assert again.data == first.data
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_redelivered_command_without_a_key_is_sent_once(linked):
    first = await linked.command(send(key=None), "alice", id="cmd-42")
    again = await linked.command(send(key=None), "alice", id="cmd-42")  # the broker delivered it again

    assert again.data == first.data
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_key_reused_for_another_message_is_refused(linked):
    await linked.command(send("hello"), "alice")

    reply = await linked.command(send("something else"), "alice")

    assert (reply.error.code, reply.error.status) == ("idempotency_key_reused", 422)
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_the_same_key_of_two_users_is_two_messages(make_harness):
    harness = make_harness()
    await harness.link("alice", "15550001111")
    await harness.link("bob", "15550002222", at_ms=2_000)

    a = await harness.command(send(), "alice")
    b = await harness.command(send(), "bob")

    assert a.ok and b.ok and a.data["id"] != b.data["id"]
    assert harness.waha.sent_texts("wf_alice") == ["hello"] and harness.waha.sent_texts("wf_bob") == ["hello"]


async def test_a_session_that_is_not_working_sends_nothing(harness):
    reply = await harness.command(send(), "alice")

    assert (reply.error.code, reply.error.status) == ("session_not_working", 409)
    assert harness.waha.sent == [] and harness.sends.docs == {}


async def test_waha_saying_the_session_is_not_working_releases_the_key(linked):
    linked.waha.sessions["wf_alice"].status = "STOPPED"  # stopped on WAHA's side, no report yet

    refused = await linked.command(send(), "alice")
    assert (refused.error.code, refused.error.status) == ("session_not_working", 409)
    assert linked.sends.docs == {}  # released: the same key may be used again

    linked.waha.sessions["wf_alice"].status = "WORKING"
    assert (await linked.command(send(), "alice")).ok
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_send_waha_certainly_did_not_make_can_be_retried_with_the_same_key(linked):
    linked.waha.fail("send.text", WahaUnavailable("WAHA answered 503", 503, not_done=True))

    failed = await linked.command(send(), "alice")
    assert (failed.error.code, failed.error.status) == ("waha_unavailable", 503)
    assert linked.registry.docs["alice"]["lastError"] == "WAHA answered 503"

    retried = await linked.command(send(), "alice")
    assert retried.ok, retried
    assert linked.waha.sent_texts("wf_alice") == ["hello"]
    assert linked.registry.docs["alice"]["lastError"] is None  # a success clears it


async def test_a_send_that_timed_out_is_not_repeated_while_it_may_still_arrive(linked):
    # WAHA took the message, but its answer never came: the outcome is unknown.
    original = linked.waha.send_text

    async def took_it_then_timed_out(*args, **kwargs):
        await original(*args, **kwargs)
        raise WahaUnavailable("WAHA did not answer send.text within 5.0s")

    linked.waha.send_text = took_it_then_timed_out
    assert (await linked.command(send(), "alice")).error.code == "waha_unavailable"
    linked.waha.send_text = original

    again = await linked.command(send(), "alice")  # looked up by the recorded id: it was sent

    assert again.ok, again
    assert again.data["id"] == linked.waha.sent[0]["id"]
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_after_a_crash_right_after_waha_took_the_message_the_retry_answers_that_message(linked):
    linked.waha.crash_after_send = True
    with pytest.raises(Crash):
        await linked.command(send(), "alice")
    linked.waha.crash_after_send = False
    linked.restart()  # a new process: the same ledger, registry and WAHA

    reply = await linked.command(send(), "alice")

    assert reply.ok, reply
    assert reply.data["id"] == linked.waha.sent[0]["id"]
    assert linked.waha.sent_texts("wf_alice") == ["hello"]
    assert linked.sends.docs[("alice", "key:k-1")]["state"] == "done"


async def test_after_a_crash_before_waha_got_the_message_it_is_sent_once_the_attempt_is_over(linked):
    key = claim_key("k-1", "cmd-dead")
    print_ = fingerprint(CHAT, "hello", None)
    await linked.sends.claim("alice", key, print_, "cmd-dead", linked.clock())
    await linked.sends.mark_sending("alice", key, "3EB0DEAD", linked.clock(), budget=10)  # then the process died

    early = await linked.command(send(), "alice")
    assert (early.error.code, early.error.status) == ("send_pending", 409)  # that attempt may still be on its way
    assert linked.waha.sent == []

    linked.clock.advance(seconds=10 + SENDING_MARGIN + 1)
    late = await linked.command(send(), "alice")

    assert late.ok, late
    assert late.data["id"] == f"true_{CHAT}_3EB0DEAD"  # the id recorded before the crash
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_claim_that_never_reached_waha_is_sent(linked):
    await linked.sends.claim("alice", "key:k-1", fingerprint(CHAT, "hello", None), "cmd-dead", linked.clock())

    reply = await linked.command(send(), "alice")

    assert reply.ok, reply
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_repeat_of_a_finished_send_does_not_ask_waha(linked):
    await linked.command(send(), "alice")
    calls = len(linked.waha.calls_of("send.text")) + len(linked.waha.calls_of("send.find"))

    await linked.command(send(), "alice")

    assert len(linked.waha.calls_of("send.text")) + len(linked.waha.calls_of("send.find")) == calls


async def test_a_rejected_send_is_answered_and_remembered(linked):
    linked.waha.fail("send.text", WahaRejected("WAHA send.text answered 400: chatId is invalid", 400))

    reply = await linked.command(send(), "alice")

    assert (reply.error.code, reply.error.status) == ("waha_rejected", 422)
    assert linked.sends.docs == {}
    assert "chatId is invalid" in linked.registry.docs["alice"]["lastError"]


async def test_the_announcement_failing_does_not_fail_the_send(linked):
    linked.events.down = True

    reply = await linked.command(send(), "alice")

    assert reply.ok, reply  # WAHA's own webhook records the message all the same
    assert linked.waha.sent_texts("wf_alice") == ["hello"]


async def test_a_stopped_session_refuses_sends_after_its_report(linked):
    await linked.command(StopSession(), "alice")
    await linked.report("alice", "STOPPED", 5_000)

    reply = await linked.command(send(), "alice")

    assert reply.error.code == "session_not_working"
