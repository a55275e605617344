"""Webhook envelopes, HMAC signing and delivery with WAHA's retry rules (docs/waha.md#webhooks)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from ulid import ULID

from .faults import Faults
from .validation import webhook_wants

log = logging.getLogger("waha_emulator.webhooks")

DEFAULT_ATTEMPTS = 15
DEFAULT_DELAY_SECONDS = 2
DEFAULT_POLICY = "constant"
# httpx's default pool: its connections bound the POSTs in flight over all URLs. Deliveries beyond them
# wait in a FIFO queue of their own (`_slots`), not in httpcore's pool, whose bookkeeping costs
# O(waiting requests x connections) on every request and response: with thousands waiting under load,
# most of the emulator's CPU.
POOL_CONNECTIONS = 100
POOL = httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=20)


class SessionLike(Protocol):
    name: str
    config: dict[str, Any]

    @property
    def me(self) -> dict[str, Any] | None: ...


def sign(body: bytes, key: str) -> str:
    """Lowercase hex HMAC-SHA512 of the exact body bytes, as in X-Webhook-Hmac."""
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def new_event_id() -> str:
    return f"evt_{str(ULID()).lower()}"


def retry_delay(policy: str, delay_seconds: float, n: int) -> float:
    """Delay before retry number n (1-based)."""
    if policy == "linear":
        return n * delay_seconds
    if policy == "exponential":
        base = delay_seconds * (2 ** n)
        return base + base * random.uniform(0, 0.2)
    return delay_seconds


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_settings(hook: dict[str, Any]) -> tuple[str, float, int]:
    retries = hook.get("retries") or {}
    policy = retries.get("policy") or DEFAULT_POLICY
    delay = retries.get("delaySeconds")
    attempts = retries.get("attempts")
    return (policy,
            float(DEFAULT_DELAY_SECONDS if delay is None else delay),
            int(DEFAULT_ATTEMPTS if attempts is None else attempts))


@dataclass
class WebhookStats:
    emitted: int = 0  # events that had at least one subscribed webhook
    deliveries: int = 0  # one delivery = one event to one URL, with all its retries
    attempts: int = 0  # POSTs made
    delivered: int = 0  # deliveries that got a 2xx
    failed: int = 0  # failed POSTs (non-2xx or connection error)
    retries: int = 0
    dropped: int = 0  # deliveries given up after the last retry
    in_flight: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inFlight"] = d.pop("in_flight")
        d["lastError"] = d.pop("last_error")
        return d


class WebhookDispatcher:
    def __init__(self, *, version: str, engine: str, timeout: float, faults: Callable[[], Faults],
                 keep_events: int = 2000) -> None:
        self.version = version
        self.engine = engine
        self.timeout = timeout
        self._faults = faults
        self.stats = WebhookStats()
        self.events: deque[dict[str, Any]] = deque(maxlen=keep_events)
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def environment(self) -> dict[str, Any]:
        return {"version": self.version, "engine": self.engine, "tier": "CORE", "browser": None,
                "platform": "linux/x64", "worker": {"id": None}}

    def envelope(self, session: SessionLike, event: str, payload: Any) -> dict[str, Any]:
        return {
            "id": new_event_id(),
            "timestamp": int(time.time() * 1000),
            "event": event,
            "session": session.name,
            "metadata": (session.config or {}).get("metadata"),
            "me": session.me,
            "payload": payload,
            "engine": self.engine,
            "environment": self.environment,
        }

    def emit(self, session: SessionLike, event: str, payload: Any) -> dict[str, Any]:
        """Build one event and start its deliveries in the background (fire-and-forget)."""
        env = self.envelope(session, event, payload)
        self.events.append(env)
        hooks = [h for h in (session.config or {}).get("webhooks") or [] if webhook_wants(h, event)]
        if not hooks:
            return env
        self.stats.emitted += 1
        body = json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode()
        copies = 1 + self._faults().duplicate_webhooks
        for hook in hooks:
            for _ in range(copies):
                self._spawn(self._deliver(hook, body, env["timestamp"]))
        return env

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One POST, once one of the pool's connections is free for it. Waiting is the emulator's own
        queueing, not a failed delivery (WAHA's axios has no pool), so under load deliveries wait (no
        pool timeout) instead of failing."""
        if self._client is None or self._slots is None:
            # verify=False like WAHA (rejectUnauthorized:false); trust_env=False keeps proxies out of loopback calls.
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, pool=None), limits=POOL,
                                             verify=False, follow_redirects=True, trust_env=False)
            self._slots = asyncio.Semaphore(POOL_CONNECTIONS)
        async with self._slots:
            return await self._client.post(url, content=body, headers=headers)

    def _headers(self, hook: dict[str, Any], body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"WAHA/{self.version}",
            "X-Webhook-Request-Id": str(ULID()),
            "X-Webhook-Timestamp": str(timestamp),
        }
        for h in hook.get("customHeaders") or []:
            headers[h["name"]] = h["value"]
        key = (hook.get("hmac") or {}).get("key")
        if key:
            headers["X-Webhook-Hmac"] = sign(body, key)
            headers["X-Webhook-Hmac-Algorithm"] = "sha512"
        return headers

    async def _deliver(self, hook: dict[str, Any], body: bytes, timestamp: int) -> None:
        url = hook["url"]
        policy, delay_s, attempts = retry_settings(hook)
        headers = self._headers(hook, body, timestamp)  # same on every retry of this delivery
        self.stats.deliveries += 1
        self.stats.in_flight += 1
        try:
            for attempt in range(attempts + 1):
                retry_after = None
                self.stats.attempts += 1
                try:
                    resp = await self._post(url, body, headers)
                    if 200 <= resp.status_code < 300:
                        self.stats.delivered += 1
                        return
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                    error = f"{url} answered {resp.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{url}: {type(exc).__name__}: {exc}"
                self.stats.failed += 1
                self.stats.last_error = error
                if attempt >= attempts:
                    self.stats.dropped += 1
                    log.warning("webhook dropped after %d attempt(s): %s (request id %s)",
                                attempt + 1, error, headers["X-Webhook-Request-Id"])
                    return
                delay = retry_delay(policy, delay_s, attempt + 1)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                self.stats.retries += 1
                log.info("webhook attempt %d failed (%s); retrying in %.2fs", attempt + 1, error, delay)
                await asyncio.sleep(delay)
        finally:
            self.stats.in_flight -= 1

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def reset(self) -> None:
        await self.cancel_all()
        self.stats = WebhookStats()
        self.events.clear()

    async def aclose(self) -> None:
        await self.cancel_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = self._slots = None
