"""Debian's headless Chromium driven by Playwright (no browser download), against the `stack` fixture."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, WebSocket, async_playwright, expect

from ..conftest import token_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As this machine needs them: no sandbox as root, and no background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's (apt-get install chromium)")
    async with async_playwright() as playwright:
        # Playwright adds --headless and a fresh temporary --user-data-dir per launch.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@dataclass
class Console:
    """One user's console in a browser context of its own, with every request and WebSocket frame it saw."""

    user: str
    page: Page
    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", self._socket)

    def _socket(self, socket: WebSocket) -> None:
        self.sockets.append(socket.url)
        socket.on("framereceived", lambda payload: self.frames.append(str(payload)))


DESKTOP = {"width": 1100, "height": 760}
PHONE = {"width": 375, "height": 740}  # an iPhone SE/mini-sized screen, the narrowest the console supports


async def open_console(browser: Browser, gateway_url: str, user: str, token: str | None = None,
                       viewport: dict[str, int] = DESKTOP) -> Console:
    context = await browser.new_context(viewport=viewport)
    console = Console(user, await context.new_page())
    console.watch()
    await console.page.goto(gateway_url + "/")
    await console.page.get_by_label("Token").fill(token or token_for(user))
    await console.page.get_by_role("button", name="Sign in").click()
    return console
