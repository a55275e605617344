"""Issue 17.7: every kind of message in the console, two users at once, over the real system.

The other person (the emulator's control API) sends photos, voice notes and documents, reacts,
edits and deletes; the user sees it all live, sends a photo from the file picker, and reads chats.
"""

import asyncio
import base64
import hashlib
import re

import httpx
import pytest
from playwright.async_api import expect

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth
from ..helpers import connect
from .conftest import Console, open_console
from .media_files import png, wav

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ALICE, BOB = "alice_media", "bob_media"
PHONES = {ALICE: "15550005555", BOB: "15550006666"}
FRIEND, OTHER = "4915112341111", "4915112342222"
PHOTO, VOICE = png(), wav()
DOC = b"%PDF-1.4 " + b"minutes " * 200
MEDIA_MAX_BYTES = 16 * 1024 * 1024  # the stack's default
BLOB = re.compile(r"^blob:")  # fetched with the token, shown from an object URL


@pytest.fixture(scope="module")
async def waha(stack):
    async with httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as client:
        yield client
        await client.post("/_emulator/faults", json={})


@pytest.fixture(scope="module")
async def gateway(stack):
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def consoles(browser, stack, gateway, waha) -> dict[str, Console]:
    await asyncio.gather(*(connect(gateway, waha, user, phone) for user, phone in PHONES.items()))
    opened = await asyncio.gather(*(open_console(browser, stack.url("gateway"), user) for user in (ALICE, BOB)))
    for console in opened:
        await expect(console.page.get_by_test_id("status")).to_have_text("WORKING")
        await expect(console.page.get_by_test_id("live")).to_have_text("live")
    yield dict(zip((ALICE, BOB), opened, strict=True))
    for console in opened:
        await console.page.context.close()


async def inbound(waha, user: str, sender: str = FRIEND, **fields) -> str:
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/inbound", json={"from": sender, **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def media(mimetype: str, data: bytes, filename: str | None = None) -> dict:
    return {"mimetype": mimetype, "filename": filename, "data": base64.b64encode(data).decode()}


async def other_person(waha, user: str, act: str, **fields) -> None:
    r = await waha.post(f"/_emulator/sessions/{session_name_for(user)}/{act}", json={"from": FRIEND, **fields})
    assert r.status_code == 201, r.text


def message(console: Console, message_id: str):
    return console.page.get_by_test_id("messages").locator(f'li[data-id="{message_id}"]')


async def open_chat(console: Console, sender: str) -> None:
    await console.page.get_by_test_id("chats").get_by_role("button", name=sender).click()
    await expect(console.page.get_by_role("heading", name=sender)).to_be_visible()


async def decoded(image) -> bool:
    return await image.evaluate("img => img.complete && img.naturalWidth > 0")


async def test_an_inbound_photo_is_shown_inline_to_its_user_only(consoles, waha):
    alice, bob = consoles[ALICE], consoles[BOB]
    photo_id = await inbound(waha, ALICE, type="image", caption="the beach", media=media("image/png", PHOTO, "beach.png"))
    await open_chat(alice, FRIEND)
    image = message(alice, photo_id).get_by_role("img", name="photo: the beach")
    await expect(image).to_have_attribute("src", BLOB)
    await wait_until(lambda: decoded(image), timeout=15, what="the photo decoded")
    assert await image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [4, 3]
    await expect(message(alice, photo_id)).to_contain_text("the beach")
    # Bob has no such chat, and his browser never fetched alice's file.
    await expect(bob.page.get_by_test_id("chats").get_by_role("button", name=FRIEND)).to_have_count(0)
    assert not any(photo_id in url for url in bob.requests)


async def test_a_voice_note_plays_and_a_document_downloads_under_its_name(consoles, waha):
    alice = consoles[ALICE]
    voice_id = await inbound(waha, ALICE, type="ptt", media=media("audio/wav", VOICE))
    doc_id = await inbound(waha, ALICE, type="document", media=media("application/pdf", DOC, "minutes.pdf"))

    audio = message(alice, voice_id).locator("audio[controls]")
    await expect(audio).to_have_attribute("src", BLOB)
    # Playable: the browser read the file's header and knows its length (0.5 s).
    await wait_until(lambda: audio.evaluate("a => a.readyState >= 1 && Math.abs(a.duration - 0.5) < 0.05"),
                     timeout=15, what="the voice note's metadata loaded")

    link = message(alice, doc_id).get_by_role("link", name="minutes.pdf")
    await expect(link).to_have_attribute("download", "minutes.pdf")
    async with alice.page.expect_download() as download:
        await link.click()
    got = await download.value
    assert got.suggested_filename == "minutes.pdf"
    assert hashlib.sha256((await got.path()).read_bytes()).digest() == hashlib.sha256(DOC).digest()


async def test_a_file_being_copied_says_so_and_a_failed_one_can_be_retried(consoles, waha):
    alice = consoles[ALICE]
    # WAHA slow to give the file: the message shows it is on its way, then the photo. (The emulator
    # tells no session in a file's path: these faults apply to every file, none but alice's is fetched.)
    slow = {"latencyMs": 3000, "paths": ["/api/files/"]}
    assert (await waha.post("/_emulator/faults", json=slow)).status_code == 201
    slow_id = await inbound(waha, ALICE, type="image", caption="slow", media=media("image/png", PHOTO))
    await expect(message(alice, slow_id).get_by_test_id("media-state")).to_have_text("image: downloading…")
    assert (await waha.post("/_emulator/faults", json={})).status_code == 201
    await expect(message(alice, slow_id).get_by_role("img", name="photo: slow")).to_have_attribute("src", BLOB)

    # WAHA no longer has the file (404): failed at once, with why; the user's retry copies it.
    gone = {"status": 404, "paths": ["/api/files/"]}
    assert (await waha.post("/_emulator/faults", json=gone)).status_code == 201
    gone_id = await inbound(waha, ALICE, type="image", caption="lost", media=media("image/png", PHOTO))
    state = message(alice, gone_id).get_by_test_id("media-state")
    await expect(state).to_contain_text("image failed (WAHA no longer has the file")
    assert (await waha.post("/_emulator/faults", json={})).status_code == 201
    await state.get_by_role("button", name="retry").click()
    image = message(alice, gone_id).get_by_role("img", name="photo: lost")
    await expect(image).to_have_attribute("src", BLOB)
    await wait_until(lambda: decoded(image), timeout=15, what="the retried photo decoded")


async def test_reactions_edits_and_deletions_appear_live(consoles, waha):
    alice = consoles[ALICE]
    first = await inbound(waha, ALICE, body="helo")
    await expect(message(alice, first)).to_contain_text("helo")
    await other_person(waha, ALICE, "reaction", messageId=first, text="👍")
    await expect(message(alice, first).get_by_test_id("reactions")).to_have_text("👍")
    await other_person(waha, ALICE, "edit", messageId=first, body="hello")
    await expect(message(alice, first).locator("p").first).to_have_text("hello")
    await expect(message(alice, first).locator(".edited")).to_have_text("edited")
    await expect(message(alice, first).get_by_test_id("reactions")).to_have_text("👍")  # kept through the edit
    await other_person(waha, ALICE, "reaction", messageId=first, text="")  # taken back
    await expect(message(alice, first).get_by_test_id("reactions")).to_have_count(0)

    oops = await inbound(waha, ALICE, body="oops, wrong chat")
    await expect(message(alice, oops)).to_contain_text("oops, wrong chat")
    await other_person(waha, ALICE, "revoke", messageId=oops)
    await expect(message(alice, oops)).to_contain_text("message deleted")
    await expect(message(alice, oops)).not_to_contain_text("oops")

    # All of it came over the WebSocket, and all of it is still there after a reload (from the API).
    assert all(any(kind in frame for frame in alice.frames) for kind in ("message.reaction", "message.edited", "message.revoked"))
    await alice.page.reload()
    await open_chat(alice, FRIEND)
    await expect(message(alice, first).locator(".edited")).to_have_text("edited")
    await expect(message(alice, oops)).to_contain_text("message deleted")


async def choose_file(console: Console, name: str, mimetype: str, data: bytes) -> None:
    await console.page.get_by_label("Attach a file").set_input_files({"name": name, "mimeType": mimetype, "buffer": data})
    await expect(console.page.get_by_test_id("send-file-name")).to_have_text(name)


async def test_a_photo_sent_from_the_file_picker_reaches_whatsapp_once(consoles, waha):
    alice, bob = consoles[ALICE], consoles[BOB]
    session = session_name_for(ALICE)
    await choose_file(alice, "trip.png", "image/png", PHOTO)
    await alice.page.get_by_placeholder("Caption (optional)").fill("our trip")
    await alice.page.get_by_role("button", name="Send").click()
    sent = alice.page.get_by_test_id("messages").locator("li.out", has_text="our trip")
    await expect(sent.get_by_role("img", name="photo: our trip")).to_have_attribute("src", BLOB)
    await wait_until(lambda: decoded(sent.get_by_role("img")), timeout=15, what="the sent photo shown")
    await expect(alice.page.get_by_test_id("send-file-name")).to_have_text("")
    await expect(alice.page.get_by_placeholder("Write a message")).to_have_value("")

    photos = [s for s in (await waha.get(f"/_emulator/sessions/{session}/sent")).json() if s["kind"] == "image"]
    assert [(p["sha256"], p.get("caption")) for p in photos] == [(hashlib.sha256(PHOTO).hexdigest(), "our trip")]
    assert [s for s in (await waha.get(f"/_emulator/sessions/{session_name_for(BOB)}/sent")).json() if s["kind"] != "text"] == []
    await expect(bob.page.get_by_text("our trip")).to_have_count(0)
    # Shown at once from the chosen file; after a reload, from the copy the API keeps.
    await alice.page.reload()
    await open_chat(alice, FRIEND)
    kept = alice.page.get_by_test_id("messages").locator("li.out", has_text="our trip").get_by_role("img")
    await wait_until(lambda: decoded(kept), timeout=15, what="the sent photo from the API")


async def test_a_file_too_large_or_of_the_wrong_kind_is_refused_in_plain_words(consoles, waha):
    alice = consoles[ALICE]
    session = session_name_for(ALICE)
    before = (await waha.get(f"/_emulator/sessions/{session}/sent")).json()
    error = alice.page.get_by_test_id("send-form").get_by_role("alert")

    await choose_file(alice, "huge.png", "image/png", b"\0" * (MEDIA_MAX_BYTES + 1))
    await alice.page.get_by_role("button", name="Send").click()
    await expect(error).to_have_text("That file is too large to send: at most 16 MiB.")

    await choose_file(alice, "minutes.pdf", "application/pdf", DOC)
    await alice.page.get_by_label("send as").select_option("image")
    await alice.page.get_by_role("button", name="Send").click()
    await expect(error).to_contain_text("That file cannot be sent as chosen: a image must be image/*")
    await alice.page.get_by_role("button", name="remove").click()
    await expect(alice.page.get_by_test_id("send-file-name")).to_have_text("")
    await expect(error).to_be_hidden()  # said of the file just removed
    assert (await waha.get(f"/_emulator/sessions/{session}/sent")).json() == before  # nothing went out


async def test_unread_counts_appear_and_reset_when_the_chat_is_opened(consoles, waha, gateway):
    alice = consoles[ALICE]
    chats = alice.page.get_by_test_id("chats")
    await expect(alice.page.get_by_role("heading", name=FRIEND)).to_be_visible()  # alice is in her friend's chat
    await inbound(waha, ALICE, OTHER, body="are you there?")
    await inbound(waha, ALICE, OTHER, body="hello?")
    badge = chats.get_by_role("button", name=OTHER).get_by_test_id("unread")
    await expect(badge).to_have_text("2")
    # The open chat counts nothing: what arrives there is read at once.
    await inbound(waha, ALICE, FRIEND, body="still here")
    await expect(message(alice, await inbound(waha, ALICE, FRIEND, body="me too"))).to_be_visible()
    await expect(chats.get_by_role("button", name=FRIEND).get_by_test_id("unread")).to_have_count(0)

    await open_chat(alice, OTHER)
    await expect(badge).to_have_count(0)

    async def counts() -> dict[str, int] | None:
        r = await gateway.get("/api/v1/waha/chats", headers=auth(ALICE))
        found = {c["chatId"]: c["unreadCount"] for c in r.json()["items"]}
        return found if found.get(f"{OTHER}@c.us") == 0 and found.get(f"{FRIEND}@c.us") == 0 else None

    await wait_until(counts, timeout=10, what="both chats read in the API")
    seen = [a for a in (await waha.get(f"/_emulator/sessions/{session_name_for(ALICE)}/actions")).json() if a["action"] == "seen"]
    assert {a["chatId"] for a in seen} >= {f"{OTHER}@c.us", f"{FRIEND}@c.us"}
    # After a reload the counts come from the API: still none.
    await alice.page.reload()
    await expect(chats.get_by_role("button", name=OTHER)).to_be_visible()
    await expect(chats.get_by_test_id("unread")).to_have_count(0)
