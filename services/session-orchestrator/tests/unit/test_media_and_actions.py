"""Media copied out of WAHA, media sent, reactions, edits, deletions, reading and typing, and the
config roll-out, against the fakes."""

import asyncio
import hashlib

import pytest

from fleet_shared.contracts import envelope
from fleet_shared.contracts.admin import ReconfigureSession
from fleet_shared.contracts.commands import (
    DeleteMessage,
    EditMessage,
    MarkChatRead,
    OutgoingMedia,
    ReactToMessage,
    RetryMedia,
    SendMessage,
    SetTyping,
)
from fleet_shared.contracts.events import MediaAvailable
from fleet_shared.contracts.media import MediaRef
from fleet_shared.media import media_key, upload_key
from session_orchestrator.adapters.ports import WahaUnavailable
from session_orchestrator.domain.session_config import session_config
from session_orchestrator.handlers.errors import Retry
from session_orchestrator.handlers.media import GONE

from .conftest import WEBHOOK_URL, Crash, WebhookTarget_for

CHAT = "4915112345678@c.us"
IN_ID = f"false_{CHAT}_3EB0IMAGE1"
PHOTO = b"\xff\xd8" + bytes(range(256)) * 40


@pytest.fixture
async def linked(harness):
    await harness.link("alice", "15550001111")
    return harness


def available(harness, url: str, message_id: str = IN_ID, user: str = "alice"):
    data = MediaAvailable(message_id=message_id, chat_id=CHAT, kind="image", url=url, mimetype="image/jpeg", filename="p.jpg")
    return harness.envelope(data, user)


async def test_a_file_waha_holds_is_copied_once_and_announced_stored(linked):
    url = linked.waha.hold_file(IN_ID, PHOTO)

    await linked.orchestrator.media.copy(available(linked, url))
    await linked.orchestrator.media.copy(available(linked, url))  # message and message.any, or a redelivery

    assert linked.media.files[media_key("alice", IN_ID)][0] == PHOTO
    assert linked.waha.calls_of("media.download") == [url]  # the second found it stored
    first, again = linked.events.of_type("message.media", "alice")
    assert first.id == again.id
    media = first.data.media
    assert (media.status, media.size, media.stored.sha256) == ("stored", len(PHOTO), hashlib.sha256(PHOTO).hexdigest())


async def test_a_file_waha_no_longer_has_is_failed_and_says_so(linked):
    await linked.orchestrator.media.copy(available(linked, "http://waha.test/api/files/s/gone.bin"))

    [event] = linked.events.of_type("message.media", "alice")
    assert (event.data.media.status, event.data.media.error) == ("failed", GONE)
    assert linked.media.files == {}


async def test_a_file_over_the_limit_is_failed_not_stored(make_harness):
    harness = make_harness(media_max_bytes=1000)
    await harness.link("alice", "15550001111")
    url = harness.waha.hold_file(IN_ID, PHOTO)

    await harness.orchestrator.media.copy(available(harness, url))

    [event] = harness.events.of_type("message.media", "alice")
    assert event.data.media.status == "failed" and "over the 1000-byte limit" in event.data.media.error


async def test_waha_unavailable_after_the_retries_is_failed_and_the_user_may_retry(linked):
    url = linked.waha.hold_file(IN_ID, PHOTO)
    linked.waha.fail("media.download", WahaUnavailable("WAHA media.download answered 503", 503))
    await linked.orchestrator.media.copy(available(linked, url))
    assert linked.events.of_type("message.media")[-1].data.media.status == "failed"

    reply = await linked.command(RetryMedia(message_id=IN_ID), "alice")

    assert reply.ok and reply.data == {"id": IN_ID, "chatId": CHAT, "status": "pending"}
    pending, = [e for e in linked.events.of_type("message.media") if e.data.media.status == "pending"]
    [queued] = linked.events.of_type("media.available", "alice")
    await linked.orchestrator.media.copy(queued)  # what the media queue's consumer does next
    assert linked.events.of_type("message.media")[-1].data.media.status == "stored"


async def test_retrying_a_message_without_a_file_is_404(linked):
    linked.waha.files_by_message[IN_ID] = ("", "image/jpeg")

    reply = await linked.command(RetryMedia(message_id=IN_ID), "alice")

    assert (reply.error.code, reply.error.status) == ("media_unavailable", 404)


async def test_the_store_or_the_broker_failing_asks_for_a_redelivery(linked):
    url = linked.waha.hold_file(IN_ID, PHOTO)
    linked.events.down = True
    with pytest.raises(Retry):
        await linked.orchestrator.media.copy(available(linked, url))


async def test_two_users_media_stay_apart(make_harness):
    harness = make_harness()
    await harness.link("alice", "15550001111")
    await harness.link("bob", "15550002222", at_ms=2_000)
    url_a = harness.waha.hold_file(IN_ID, b"alice's photo")
    url_b = harness.waha.hold_file(IN_ID + "B", b"bob's photo")

    await asyncio.gather(
        harness.orchestrator.media.copy(available(harness, url_a)),
        harness.orchestrator.media.copy(available(harness, url_b, IN_ID, user="bob")),
    )

    assert harness.media.files[media_key("alice", IN_ID)][0] == b"alice's photo"
    assert harness.media.files[media_key("bob", IN_ID)][0] == b"bob's photo"


async def stored_upload(harness, user: str = "alice", data: bytes = PHOTO, upload: str = "u1") -> OutgoingMedia:
    ref: MediaRef = await harness.media.put(upload_key(user, upload), data, "image/jpeg")
    return OutgoingMedia(kind="image", mimetype="image/jpeg", filename="p.jpg", stored=ref)


async def test_a_media_message_is_sent_once_with_its_caption_and_announced_stored(linked):
    media = await stored_upload(linked)
    command = SendMessage(chat_id=CHAT, text="look!", media=media, idempotency_key="k-photo")

    first = await linked.command(command, "alice")
    again = await linked.command(command, "alice")

    assert first.ok and again.data == first.data
    [made] = linked.waha.sent
    assert (made["kind"], made["text"], made["sha256"]) == ("image", "look!", hashlib.sha256(PHOTO).hexdigest())
    [event] = linked.events.of_type("message.sent", "alice")
    assert (event.data.type, event.data.has_media, event.data.media.status, event.data.media.stored) == (
        "image", True, "stored", media.stored
    )


async def test_after_a_crash_right_after_waha_took_the_file_the_retry_answers_that_message(linked):
    media = await stored_upload(linked)
    command = SendMessage(chat_id=CHAT, text="look!", media=media, idempotency_key="k-photo")
    linked.waha.crash_after_send = True
    with pytest.raises(Crash):
        await linked.command(command, "alice")
    linked.waha.crash_after_send = False
    linked.restart()

    reply = await linked.command(command, "alice")

    assert reply.ok, reply
    [made] = linked.waha.sent  # WhatsApp got the photo once
    assert reply.data["id"] == made["id"]
    assert linked.sends.docs[("alice", "key:k-photo")]["state"] == "done"


async def test_the_same_key_with_another_file_is_refused(linked):
    await linked.command(SendMessage(chat_id=CHAT, media=await stored_upload(linked), idempotency_key="k"), "alice")
    other = await stored_upload(linked, data=b"another file", upload="u2")

    reply = await linked.command(SendMessage(chat_id=CHAT, media=other, idempotency_key="k"), "alice")

    assert reply.error.code == "idempotency_key_reused"


async def test_a_file_missing_from_the_store_is_404_and_frees_the_key(linked):
    media = await stored_upload(linked)
    await linked.media.delete(media.stored.key)

    reply = await linked.command(SendMessage(chat_id=CHAT, media=media, idempotency_key="k-gone"), "alice")

    assert (reply.error.code, reply.error.status) == ("media_not_found", 404)
    assert linked.waha.sent == [] and ("alice", "key:k-gone") not in linked.sends.docs


@pytest.mark.parametrize(
    ("command", "action"),
    [
        (ReactToMessage(message_id=IN_ID, reaction="👍"), ("react", "wf_alice", IN_ID, "👍")),
        (ReactToMessage(message_id=IN_ID, reaction=""), ("react", "wf_alice", IN_ID, "")),
        (EditMessage(message_id=f"true_{CHAT}_3EB0MINE", text="fixed"), ("edit", "wf_alice", f"true_{CHAT}_3EB0MINE", "fixed")),
        (DeleteMessage(message_id=f"true_{CHAT}_3EB0MINE"), ("delete", "wf_alice", f"true_{CHAT}_3EB0MINE", "")),
        (SetTyping(chat_id=CHAT, typing=True), ("typing", "wf_alice", CHAT, "True")),
    ],
)
async def test_message_and_chat_actions_go_to_the_users_own_session(linked, command, action):
    reply = await linked.command(command, "alice")

    assert reply.ok, reply
    assert linked.waha.actions == [action]


async def test_reading_a_chat_tells_whatsapp_and_resets_the_unread_count(linked):
    reply = await linked.command(MarkChatRead(chat_id=CHAT, message_ids=[IN_ID]), "alice")

    assert reply.ok and linked.waha.actions == [("seen", "wf_alice", CHAT, IN_ID)]
    [read] = linked.events.of_type("chat.read", "alice")
    assert (read.data.chat_id, read.data.read_at) == (CHAT, int(linked.clock().timestamp()))


async def test_actions_need_a_working_session(harness):
    for command in (ReactToMessage(message_id=IN_ID, reaction="👍"), MarkChatRead(chat_id=CHAT), SetTyping(chat_id=CHAT, typing=False)):
        reply = await harness.command(command, "alice")
        assert (reply.error.code, reply.error.status) == ("session_not_working", 409)
    assert harness.waha.actions == []


async def test_a_session_with_an_older_config_gets_the_current_one_keeping_its_pairing(linked):
    session = linked.waha.sessions["wf_alice"]
    session.config["webhooks"][0]["events"] = ["message", "session.status"]  # as an earlier version set it

    reply = await linked.command(ReconfigureSession(), "alice")

    assert reply.data == {"reconfigured": True}
    assert session.config == session_config("alice", WebhookTarget_for(linked.settings))
    assert session.phone == "15550001111"
    assert (await linked.command(ReconfigureSession(), "alice")).data == {"reconfigured": False, "reason": "current"}


async def test_start_up_rolls_the_config_out_one_session_at_a_time(make_harness):
    from datetime import timedelta

    harness = make_harness(config_rollout_interval=timedelta(milliseconds=50))
    for n, user in enumerate(("amy", "ben", "cid")):
        await harness.link(user, f"1555000000{n}", at_ms=1_000 * (n + 1))
        harness.waha.sessions[f"wf_{user}"].config["webhooks"][0]["events"] = ["message"]
    await harness.waha.create_session("wf_nobody", {"metadata": {"fleet.userId": "eve"}})  # not a user's

    started = asyncio.get_running_loop().time()
    await harness.orchestrator.jobs.reconcile_once()
    await asyncio.wait_for(asyncio.gather(*harness.orchestrator.jobs._tasks), 5)

    sent = [e.user_id for e in harness.upkeep.published if e.type == ReconfigureSession.TYPE]
    assert sent == ["amy", "ben", "cid"]
    assert asyncio.get_running_loop().time() - started >= 0.1  # two intervals between three
    await harness.orchestrator.jobs.stop()


def test_envelopes_for_media_carry_no_bytes():
    data = MediaAvailable(message_id=IN_ID, chat_id=CHAT, kind="image", url="http://w/api/files/s/x.jpg")
    assert len(envelope(data, "alice").model_dump_json()) < 1000
    assert WEBHOOK_URL
