"""Issue 21: the API documentation at /docs renders in Chromium with nothing reachable but the gateway."""

from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Route, expect

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_the_api_docs_render_with_only_the_gateway_reachable(browser, stack):
    gateway = stack.url("gateway")
    document = httpx.get(f"{gateway}/openapi.json", timeout=10).json()
    operations = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    elsewhere: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        url = urlparse(route.request.url)
        if url.scheme == "data" or url.netloc == urlparse(gateway).netloc:
            await route.continue_()
        else:  # as if offline: no CDN, no online validator
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_gateway)
    page = await context.new_page()
    errors: list[str] = []  # a Content-Security-Policy refusal, a script that failed
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    response = await page.goto(f"{gateway}/docs")
    assert response is not None and response.status == 200
    await expect(page.locator(".opblock")).to_have_count(len(operations))
    status = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text="/api/v1/waha/status"))
    await status.locator(".opblock-summary").click()
    await expect(status.locator(".responses-wrapper")).to_contain_text("200")
    assert elsewhere == []
    assert errors == []
    await context.close()
