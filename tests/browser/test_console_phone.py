"""Issue 21: the console on a phone-sized screen (375 px wide): one column, nothing cut off, a usable message box."""

import httpx
import pytest
from playwright.async_api import expect

from .conftest import PHONE, open_console

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

USER, SESSION, SENDER = "carol_phone", "wf_carol_phone", "4915112349999"


async def right_edge(locator) -> float:
    box = await locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"]


async def test_the_console_is_usable_375_px_wide(browser, stack):
    console = await open_console(browser, stack.url("gateway"), USER, viewport=PHONE)
    page = console.page
    try:
        await page.get_by_role("button", name="Connect WhatsApp").click()
        qr = page.get_by_role("img", name="QR code to scan with WhatsApp")
        await expect(qr).to_be_visible()
        assert await right_edge(qr) <= PHONE["width"]
        async with httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as waha:
            r = await waha.post(f"/_emulator/sessions/{SESSION}/scan", json={"phone": "15550009999"})
            assert r.status_code in (200, 201), r.text
            await expect(page.get_by_test_id("status")).to_have_text("WORKING")
            r = await waha.post(f"/_emulator/sessions/{SESSION}/inbound", json={"from": SENDER, "body": "Hi on a phone"})
            assert r.status_code == 201, r.text
        await page.get_by_test_id("chats").get_by_role("button", name=SENDER).click()
        await expect(page.get_by_test_id("messages")).to_contain_text("Hi on a phone")

        text = page.get_by_placeholder("Write a message")
        box = await text.bounding_box()
        assert box is not None and box["width"] >= 0.55 * PHONE["width"], box  # it was ~30 px
        for control in (text, page.get_by_role("button", name="Send"), page.get_by_role("button", name="Sign out")):
            assert await right_edge(control) <= PHONE["width"]
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling

        await text.fill("Sent from 375 px")
        await page.get_by_role("button", name="Send").click()
        await expect(page.get_by_test_id("messages").locator("li.out", has_text="Sent from 375 px")).to_be_visible()
    finally:
        await page.context.close()
