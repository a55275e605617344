"""Issue 18: in the console, a user on the phone itself pairs with a code instead of the QR, and
sees their history imported."""

import re

import httpx
import pytest
from playwright.async_api import expect

from fleet_shared.ids import session_name_for

from ..helpers import unique_user
from .conftest import open_console

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_pairing_by_phone_number_beside_the_qr_then_the_history_is_imported(browser, stack):
    user = unique_user("cpair")
    session = session_name_for(user)
    console = await open_console(browser, stack.url("gateway"), user)
    page = console.page
    try:
        await page.get_by_role("button", name="Connect WhatsApp").click()
        await expect(page.get_by_test_id("qr")).to_be_visible()
        async with httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as waha:
            r = await waha.post(f"/_emulator/sessions/{session}/history", json={"generate": {"chats": 4, "messagesPerChat": 3}})
            assert r.status_code == 201, r.text

            await page.get_by_label("Link with your phone number instead").fill("+49 151 0000 0777")
            await page.get_by_role("button", name="Get a code").click()
            code = page.get_by_test_id("pairing-code")
            await expect(code).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))

            r = await waha.post(f"/_emulator/sessions/{session}/pair", json={"code": await code.text_content()})
            assert r.status_code in (200, 201), r.text
        await expect(page.get_by_test_id("status")).to_have_text("WORKING", timeout=15_000)
        await expect(page.get_by_test_id("qr")).to_be_hidden()
        await expect(page.get_by_test_id("history-import")).to_have_text(
            re.compile(r"^History imported: 4 chats, \d+ messages$"), timeout=20_000
        )
        await expect(page.get_by_test_id("chats").get_by_role("listitem")).to_have_count(4)
    finally:
        await page.context.close()
