from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from waha_emulator import EmulatorConfig, create_app
from waha_emulator.testing import WebhookReceiver, wait_until

API_KEY = "test-key"

FAST = dict(
    api_key=API_KEY,
    qr_first_lifetime=0.8,
    qr_next_lifetime=0.4,
    qr_count=3,
    starting_delay=0.05,
    send_wait_timeout=0.4,
    qr_wait_timeout=0.4,
    ack_delay=0.05,
    webhook_timeout=3.0,
)


def fast_config(**overrides: Any) -> EmulatorConfig:
    return EmulatorConfig(**{**FAST, **overrides})


class Harness:
    """One in-process emulator plus clients with and without the API key."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.app = create_app(config)
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://waha", headers={"X-Api-Key": API_KEY})
        self.anon = httpx.AsyncClient(transport=transport, base_url="http://waha")

    @property
    def emulator(self) -> Any:
        return self.app.state.emulator

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.anon.aclose()
        await self.emulator.aclose()

    async def create(self, name: str, *, url: str | None = None, start: bool = True, events: list[str] | None = None,
                     hmac_key: str | None = None, retries: dict | None = None, metadata: dict | None = None,
                     **hook: Any) -> httpx.Response:
        config: dict[str, Any] = {}
        if url:
            webhook: dict[str, Any] = {"url": url, "events": events or ["*"], **hook}
            if hmac_key:
                webhook["hmac"] = {"key": hmac_key}
            if retries is not None:
                webhook["retries"] = retries
            config["webhooks"] = [webhook]
        if metadata is not None:
            config["metadata"] = metadata
        return await self.client.post("/api/sessions", json={"name": name, "start": start, "config": config})

    async def status(self, name: str) -> str:
        r = await self.client.get(f"/api/sessions/{name}")
        assert r.status_code == 200, r.text
        return r.json()["status"]

    async def wait_status(self, name: str, status: str, timeout: float = 5.0) -> None:
        async def check() -> bool:
            return await self.status(name) == status

        await wait_until(check, timeout, message=f"{name} -> {status}")

    async def qr_value(self, name: str) -> str:
        r = await self.client.get(f"/api/{name}/auth/qr", params={"format": "raw"})
        assert r.status_code == 200, r.text
        return r.json()["value"]

    async def link(self, name: str, phone: str = "15550001111", **create: Any) -> None:
        if (await self.client.get(f"/api/sessions/{name}")).status_code == 404:
            assert (await self.create(name, **create)).status_code == 201
        await self.wait_status(name, "SCAN_QR_CODE")
        r = await self.client.post(f"/_emulator/sessions/{name}/scan", json={"phone": phone})
        assert r.status_code == 201, r.text
        await self.wait_status(name, "WORKING")


@pytest.fixture
async def make_emu() -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        h = Harness(fast_config(**overrides))
        made.append(h)
        return h

    yield make
    for h in made:
        await h.aclose()


@pytest.fixture
async def emu(make_emu: Callable[..., Harness]) -> Harness:
    return make_emu()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as r:
        yield r
