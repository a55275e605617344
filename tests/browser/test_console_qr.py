"""The QR stays up when the report of the start that made it comes late (it used to vanish right
after being shown: tests/browser/test_console_phone.py failed now and then on it).

GET /qr starts the session and waits for its QR; WAHA's STARTING travels webhook → ingest →
orchestrator → broker → WebSocket and can reach the page after that QR. Here the page's socket
holds every STARTING back until the QR is shown, then lets it through.
"""

import asyncio
import re

import pytest
from playwright.async_api import WebSocketRoute, expect

from fleet_devtools.localdev import wait_until

from ..conftest import token_for
from .conftest import DESKTOP

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

USER = "dan_qr"

WATCH = """() => {
    window.seen = [];
    const note = () => window.seen.push([document.getElementById("status").textContent,
                                         document.getElementById("qr").hidden]);
    new MutationObserver(note).observe(document.getElementById("session"),
                                       {subtree: true, childList: true, characterData: true, attributes: true});
}"""


async def test_a_late_starting_leaves_the_qr_shown(browser, stack):
    held: list[str] = []
    pages: list[WebSocketRoute] = []

    def hold_starting(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        pages.append(ws)
        server.on_message(lambda frame: held.append(frame) if '"status":"STARTING"' in str(frame) else ws.send(frame))

    context = await browser.new_context(viewport=DESKTOP)
    await context.route_web_socket(re.compile(r"/api/v1/events"), hold_starting)
    page = await context.new_page()
    try:
        await page.goto(stack.url("gateway") + "/")
        await page.get_by_label("Token").fill(token_for(USER))
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("live")).to_have_text("live")
        await page.get_by_role("button", name="Connect WhatsApp").click()
        qr = page.get_by_role("img", name="QR code to scan with WhatsApp")
        await expect(qr).to_be_visible()
        value = await qr.get_attribute("data-value")
        await wait_until(lambda: asyncio.sleep(0, bool(held)), timeout=15, what="the STARTING held back")

        await page.evaluate(WATCH)
        for frame in held:
            pages[-1].send(frame)
        await wait_until(lambda: page.evaluate("window.seen.some(([status]) => status === 'STARTING')"),
                         timeout=10, what="the late STARTING handled")
        await expect(page.get_by_test_id("status")).to_have_text("SCAN_QR_CODE")  # GET /qr said it still holds
        seen = await page.evaluate("window.seen")
        assert not any(hidden for _, hidden in seen), seen
        await expect(qr).to_be_visible()
        await expect(qr).to_have_attribute("data-value", value)
        await expect(page.locator("#qr.unsure")).to_have_count(0)
    finally:
        await context.close()
