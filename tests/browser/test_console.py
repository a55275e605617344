"""Issue 8: the web console at `/`, two users in two browser contexts at once, over the real system.

The tests run in order, each going on from where the one before left both users.
"""

import asyncio
import json
import re
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.async_api import expect

from fleet_devtools.localdev import wait_until

from ..conftest import auth, token_for
from .conftest import Console, open_console

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Users of their own: the whole-system tests in tests/e2e connect alice and bob on the same stack.
ALICE, BOB = "alice_console", "bob_console"
SESSIONS = {ALICE: "wf_alice_console", BOB: "wf_bob_console"}
PHONES = {ALICE: "15550003333", BOB: "15550004444"}
SENDER = "4915112340000"


@pytest.fixture(scope="module")
async def consoles(browser, stack) -> dict[str, Console]:
    opened = await asyncio.gather(*(open_console(browser, stack.url("gateway"), user) for user in (ALICE, BOB)))
    yield dict(zip((ALICE, BOB), opened, strict=True))
    for console in opened:
        await console.page.context.close()


@pytest.fixture(scope="module")
async def waha(stack):
    async with httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as client:
        yield client


def qr_image(console: Console):
    return console.page.get_by_role("img", name="QR code to scan with WhatsApp")


async def test_a_wrong_token_is_refused_and_the_sign_in_stays(browser, stack):
    console = await open_console(browser, stack.url("gateway"), "nobody", token="not-a-token")
    await expect(console.page.get_by_test_id("sign-in-error")).to_contain_text("Sign-in refused: the token is not valid")
    await expect(console.page.get_by_role("button", name="Sign in")).to_be_visible()
    await console.page.context.close()


async def test_each_user_signs_in_and_sees_their_own_status(consoles):
    for user, console in consoles.items():
        page = console.page
        await expect(page.get_by_test_id("user")).to_have_text(user)
        await expect(page.get_by_test_id("status")).to_have_text("STOPPED")
        await expect(page.get_by_role("button", name="Connect WhatsApp")).to_be_visible()
        await expect(page.get_by_test_id("qr")).to_be_hidden()
        await expect(page.get_by_test_id("live")).to_have_text("live")


async def send_form_error(console: Console, to: str, text: str):
    page = console.page
    await page.get_by_placeholder("to: 4915112345678@c.us").fill(to)
    await page.get_by_placeholder("Write a message").fill(text)
    await page.get_by_role("button", name="Send").click()
    return page.get_by_test_id("send-form").get_by_role("alert")  # inside the form, under its fields


async def test_a_refused_send_is_explained_in_plain_words_under_the_form(consoles):
    bob = consoles[BOB]
    error = await send_form_error(bob, f"{SENDER}@c.us", "Hi")  # bob has not connected WhatsApp yet
    await expect(error).to_have_text(re.compile(r"^WhatsApp is not connected yet: press Connect WhatsApp"))
    error = await send_form_error(bob, "my friend", "Hi")
    await expect(error).to_have_text(re.compile(r"^That recipient is not a WhatsApp number: write it with its country code"))
    await expect(bob.page.get_by_test_id("error")).to_be_hidden()  # not in the banner far above
    await bob.page.get_by_placeholder("to: 4915112345678@c.us").fill("")
    await bob.page.get_by_placeholder("Write a message").fill("")


async def test_each_user_sees_only_their_own_qr(consoles):
    await asyncio.gather(*(c.page.get_by_role("button", name="Connect WhatsApp").click() for c in consoles.values()))
    values = {}
    for user, console in consoles.items():
        await expect(qr_image(console)).to_be_visible()
        await expect(console.page.get_by_test_id("status")).to_have_text("SCAN_QR_CODE")
        # The emulator's QR value names the session it links: this user's, never the other's.
        values[user] = await qr_image(console).get_attribute("data-value")
        assert f",{SESSIONS[user]}," in values[user]
        other = BOB if user == ALICE else ALICE
        assert SESSIONS[other] not in values[user]
        src = await qr_image(console).get_attribute("src")
        assert src.startswith("data:image/png;base64,iVBORw0KGgo")  # a PNG, inline
    assert values[ALICE] != values[BOB]


async def test_the_qr_refreshes_when_it_changes(consoles, stack):
    alice = consoles[ALICE]
    before = await qr_image(alice).get_attribute("data-value")
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gateway:
        r = await gateway.post("/api/v1/waha/session/restart", headers=auth(ALICE))
        assert r.status_code == 202, r.text
    await expect(qr_image(alice)).not_to_have_attribute("data-value", before)
    await expect(qr_image(alice)).to_have_attribute("data-value", re.compile(f",{SESSIONS[ALICE]},"))


async def test_the_qr_disappears_once_the_phone_scanned_it(consoles, waha):
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[ALICE]}/scan", json={"phone": PHONES[ALICE]})
    assert r.status_code in (200, 201), r.text
    alice, bob = consoles[ALICE].page, consoles[BOB].page
    await expect(alice.get_by_test_id("status")).to_have_text("WORKING")
    await expect(alice.get_by_test_id("qr")).to_be_hidden()
    await expect(alice.get_by_test_id("phone")).to_have_text(f"+{PHONES[ALICE]}")
    # Bob has not scanned his: he still has his QR.
    await expect(bob.get_by_test_id("status")).to_have_text("SCAN_QR_CODE")
    await expect(qr_image(consoles[BOB])).to_be_visible()

    r = await waha.post(f"/_emulator/sessions/{SESSIONS[BOB]}/scan", json={"phone": PHONES[BOB]})
    assert r.status_code in (200, 201), r.text
    await expect(bob.get_by_test_id("status")).to_have_text("WORKING")
    await expect(bob.get_by_test_id("qr")).to_be_hidden()


async def inbound(waha, user: str, body: str) -> str:
    r = await waha.post(f"/_emulator/sessions/{SESSIONS[user]}/inbound", json={"from": SENDER, "body": body})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


async def any_frame(console: Console, text: str) -> bool:
    return any(text in frame for frame in console.frames)


async def test_an_inbound_message_appears_live_for_its_user_only(consoles, waha):
    alice, bob = consoles[ALICE], consoles[BOB]
    await expect(alice.page.get_by_test_id("live")).to_have_text("live")
    await inbound(waha, ALICE, "Hi Alice!")
    chat = alice.page.get_by_test_id("chats").get_by_role("button", name=SENDER)
    await expect(chat).to_contain_text("Hi Alice!")
    await chat.click()
    messages = alice.page.get_by_test_id("messages")
    await expect(messages.get_by_text("Hi Alice!")).to_be_visible()

    # With the chat open, the next message arrives over the WebSocket (no polling while it is live).
    markup = "<b>not bold</b> <img src=x onerror=alert(1)>"
    wa_id = await inbound(waha, ALICE, markup)
    await expect(messages.get_by_text(markup)).to_be_visible()  # shown as text, not as HTML
    await expect(messages.locator("b, img")).to_have_count(0)
    await wait_until(lambda: any_frame(alice, wa_id), timeout=5, what="the message in a WebSocket frame")

    # Bob's own message reaches bob, and neither sees the other's.
    await inbound(waha, BOB, "Hi Bob!")
    await expect(bob.page.get_by_test_id("chats")).to_contain_text("Hi Bob!")
    await expect(bob.page.get_by_text("Hi Alice!")).to_have_count(0)
    await expect(alice.page.get_by_text("Hi Bob!")).to_have_count(0)
    assert not any("Hi Alice!" in frame for frame in bob.frames)
    assert not any("Hi Bob!" in frame for frame in alice.frames)


async def test_alice_sends_a_message_through_her_own_session(consoles, waha):
    alice = consoles[ALICE]
    await expect(alice.page.get_by_placeholder("to: 4915112345678@c.us")).to_have_value(f"{SENDER}@c.us")  # the open chat
    await alice.page.get_by_placeholder("Write a message").fill("Hello from the console")
    await alice.page.get_by_role("button", name="Send").click()
    sent = alice.page.get_by_test_id("messages").locator("li.out", has_text="Hello from the console")
    await expect(sent).to_be_visible()
    await expect(alice.page.get_by_placeholder("Write a message")).to_have_value("")
    alice_sent = (await waha.get(f"/_emulator/sessions/{SESSIONS[ALICE]}/sent")).json()
    bob_sent = (await waha.get(f"/_emulator/sessions/{SESSIONS[BOB]}/sent")).json()
    assert any("Hello from the console" in str(m) for m in alice_sent)
    assert not any("Hello from the console" in str(m) for m in bob_sent)
    await expect(consoles[BOB].page.get_by_text("Hello from the console")).to_have_count(0)


async def test_after_a_gateway_restart_the_console_reconnects_and_catches_up(consoles, stack, waha):
    console = consoles[ALICE]
    alice = console.page
    live = alice.get_by_test_id("live")
    await asyncio.to_thread(stack.kill, "gateway")
    await expect(live).to_have_text("polling")
    last_seq = json.loads(console.frames[-1])["seq"]  # the last event the page handled
    frames_before, sockets_before = len(console.frames), len(console.sockets)
    wa_id = await inbound(waha, ALICE, "While you were away")  # no gateway to tell the console now
    await asyncio.to_thread(stack.start_again, "gateway")
    await expect(live).to_have_text("live")
    await expect(alice.get_by_test_id("messages").get_by_text("While you were away")).to_be_visible()
    # It resumed from its last seq: the new socket replayed what was stored while it was away, in order.
    resumed = [url for url in console.sockets[sockets_before:] if parse_qs(urlparse(url).query).get("after")]
    assert resumed and parse_qs(urlparse(resumed[0]).query)["after"] == [str(last_seq)]

    async def replayed() -> list[dict] | None:
        frames = [json.loads(f) for f in console.frames[frames_before:]]
        return frames if any(f["type"] == "message.received" and f["data"]["id"] == wa_id for f in frames) else None

    frames = await wait_until(replayed, timeout=10, what="the missed message replayed over the new socket")
    assert [f["seq"] for f in frames] == list(range(last_seq + 1, last_seq + 1 + len(frames)))


async def test_signing_out_forgets_the_user_before_the_next_signs_in(consoles):
    page = consoles[ALICE].page
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    await page.get_by_label("Token").fill(token_for(BOB))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("user")).to_have_text(BOB)
    await expect(page.get_by_test_id("chats")).to_contain_text("Hi Bob!")
    await expect(page.get_by_text("Hi Alice!")).to_have_count(0)
    await expect(page.get_by_test_id("messages").locator("li")).to_have_count(0)


WATCH_STATUS = """() => {
    window.seenStatuses = [];
    const note = () => window.seenStatuses.push([document.getElementById("status").textContent,
                                                 !document.getElementById("connect").hidden]);
    new MutationObserver(note).observe(document.getElementById("session"), {subtree: true, childList: true,
                                                                             characterData: true, attributes: true});
}"""


async def test_a_logout_goes_straight_to_the_new_qr(consoles, stack):
    bob = consoles[BOB]
    await expect(bob.page.get_by_test_id("status")).to_have_text("WORKING")
    await bob.page.evaluate(WATCH_STATUS)
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gateway:
        r = await gateway.post("/api/v1/waha/session/logout", headers=auth(BOB))
        assert r.status_code == 202, r.text
    await expect(qr_image(bob)).to_be_visible()
    await expect(bob.page.get_by_test_id("status")).to_have_text("SCAN_QR_CODE")
    # The console was told STOPPED (WAHA's logout stops, then starts again) but never showed it.
    assert any('"STOPPED"' in frame and "status_changed" in frame for frame in bob.frames)
    seen = await bob.page.evaluate("window.seenStatuses")
    assert seen and all(status != "STOPPED" and not connect for status, connect in seen), seen


async def test_a_stop_that_lasts_shows_stopped_and_connect(consoles, stack):
    bob = consoles[BOB].page
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gateway:
        r = await gateway.post("/api/v1/waha/session/stop", headers=auth(BOB))
        assert r.status_code == 202, r.text
    await expect(bob.get_by_test_id("status")).to_have_text("STOPPED")
    await expect(bob.get_by_role("button", name="Connect WhatsApp")).to_be_visible()
    await expect(bob.get_by_test_id("qr")).to_be_hidden()


async def test_the_console_fetches_nothing_from_anywhere_else(consoles, stack):
    gateway = urlparse(stack.url("gateway")).netloc
    for console in consoles.values():
        assert console.requests and console.sockets
        foreign = [u for u in console.requests + console.sockets if not u.startswith("data:") and urlparse(u).netloc != gateway]
        assert foreign == []
        # Each socket opened with a one-time ticket, never with the token in its URL.
        assert all("/api/v1/events?ticket=" in u and "token=" not in u for u in console.sockets)
        # A fresh ticket for every socket, the reconnections after the gateway's restart too.
        tickets = [parse_qs(urlparse(u).query)["ticket"][0] for u in console.sockets]
        assert len(set(tickets)) == len(tickets)
        assert sum(u.endswith("/api/v1/events/ticket") for u in console.requests) >= len(console.sockets)
    assert len(consoles[ALICE].sockets) >= 2  # alice's console reconnected after the restart
