"""Screenshots of the web console in each state, into docs/console/, with Debian's headless Chromium.

    uv run python scripts/console_screenshots.py [out-dir]

Starts a throwaway system of its own (as `make run` does, on a fresh broker prefix, everything in
memory), plays alice's phone through the emulator's control API, and photographs the console.
Needs the RabbitMQ at RABBITMQ_URL and /usr/bin/chromium (`make browser`).
"""

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from fleet_devtools.localdev import free_port
from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.topology import Topology
from local_launcher.stack import DEFAULT_PORTS, Stack, StackConfig
from local_launcher.tokens import make_token

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
FRIEND, OTHER = "4915112345678", "4917099887766"


def start_stack(prefix: str, secret: str) -> Stack:
    config = StackConfig(
        env={
            "ENVIRONMENT": "dev",
            "RABBITMQ_URL": RABBITMQ_URL,
            "BROKER_PREFIX": prefix,
            "ORCHESTRATOR_PARTITIONS": "4",
            "JWT_SECRET": secret,
            "WAHA_API_KEY": uuid.uuid4().hex,
            "WEBHOOK_HMAC_KEY": uuid.uuid4().hex,
            "WAHA_EMULATOR_STARTING_DELAY": "0.1",
            "WAHA_EMULATOR_ACK_DELAY": "0.5",
        },
        ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=Path(tempfile.mkdtemp(prefix="console-shots-")),
    )
    stack = Stack(config)
    stack.start()
    return stack


def inbound(waha: httpx.Client, body: str, sender: str = FRIEND) -> None:
    waha.post("/_emulator/sessions/wf_alice/inbound", json={"from": sender, "body": body}).raise_for_status()


def shoot(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    page.screenshot(path=out / f"{name}.png", full_page=full_page)
    print(f"wrote {out / name}.png")


def take(stack: Stack, secret: str, out: Path) -> None:
    with httpx.Client(base_url=stack.waha_url, timeout=30) as waha, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(stack.url("gateway") + "/")
        page.get_by_label("Token").fill(make_token(secret, "alice"))
        shoot(page, out, "1-sign-in")

        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Connect WhatsApp").click()
        expect(page.get_by_role("img", name="QR code to scan with WhatsApp")).to_be_visible(timeout=15_000)
        expect(page.get_by_test_id("live")).to_have_text("live", timeout=15_000)
        shoot(page, out, "2-qr")

        waha.post("/_emulator/sessions/wf_alice/scan", json={"phone": "15550001111"}).raise_for_status()
        expect(page.get_by_test_id("status")).to_have_text("WORKING", timeout=15_000)
        inbound(waha, "Are we still on for Friday?", OTHER)
        inbound(waha, "Hi Alice! Did you get the photos?")
        chat = page.get_by_test_id("chats").get_by_role("button", name=FRIEND)
        expect(chat).to_contain_text("photos", timeout=15_000)
        chat.click()
        page.get_by_placeholder("Write a message").fill("Yes, thank you! They are lovely.")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_test_id("messages").locator("li.out")).to_contain_text("✓✓", timeout=15_000)
        shoot(page, out, "3-connected")

        inbound(waha, "Great, see you on Friday then")
        expect(page.get_by_test_id("messages")).to_contain_text("see you on Friday", timeout=15_000)
        shoot(page, out, "4-live-message")

        page.set_viewport_size({"width": 375, "height": 740})  # a phone: the cards stack, the form stays usable
        shoot(page, out, "5-phone", full_page=True)
        browser.close()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console")
    out.mkdir(parents=True, exist_ok=True)
    prefix, secret = f"shots{uuid.uuid4().hex[:8]}", uuid.uuid4().hex * 2
    stack = start_stack(prefix, secret)
    try:
        take(stack, secret, out)
    finally:
        stack.stop()
        asyncio.run(delete_topology(RABBITMQ_URL, Topology(prefix, 4)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
