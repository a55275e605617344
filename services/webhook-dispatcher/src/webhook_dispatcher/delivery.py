"""Making the deliveries: one worker per subscription, each in `seq` order, all sharing a bound on
attempts in flight (docs/reliability.md, "Webhook deliveries").

A worker takes its subscription's oldest pending delivery, POSTs it (signed, `WEBHOOK_TIMEOUT` at
most) and records the outcome in MongoDB before it takes the next: a 2xx is `delivered`; anything
else is tried again after an exponential backoff with full jitter, until `WEBHOOK_RETRY_FOR` after
the event, when it is `failed` and the worker goes on. The schedule lives in MongoDB only, so a
dispatcher killed mid-attempt leaves that delivery pending and the next process tries it again:
at least once, in order; a receiver dedupes by `Webhook-Id`. One slow or dead endpoint holds up
its own subscription only: the others have their own workers, and an attempt holds one of the
`WEBHOOK_CONCURRENCY` slots for `WEBHOOK_TIMEOUT` at most.
"""

import asyncio
import contextlib
import logging
import random
import time
from datetime import timedelta

import httpx

from fleet_shared.contracts import utcnow
from fleet_shared.errors import describe
from fleet_shared.outbound import RefusedUrl, check_url

from .metrics import ATTEMPTS, GIVEN_UP, LATENCY
from .signing import EVENT_ID_HEADER, SEQ_HEADER, SIGNATURE_HEADER, signature
from .store import Delivery, Store, Subscription

log = logging.getLogger(__name__)

# How often an idle worker looks for work it was not woken for: intake wakes the workers of the
# user whose event it scheduled (the fast path); this is only the safety net, kept long so 1,000
# idle workers cost MongoDB little (about 33 reads/s).
IDLE_CHECK = 30.0
MAX_ERROR = 300


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Full jitter: a random wait between 0 and min(cap, base * 2^(attempts-1))."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** min(attempts - 1, 40))
    return timedelta(seconds=random.uniform(0, ceiling))


class Dispatcher:
    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        *,
        concurrency: int,
        retry_for: timedelta,
        backoff_base: timedelta,
        backoff_cap: timedelta,
        allow_private: bool,
    ) -> None:
        self.store = store
        self.client = client
        self.retry_for = retry_for
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.allow_private = allow_private
        self._slots = asyncio.Semaphore(concurrency)
        self._workers: dict[str, asyncio.Task] = {}
        self._wake: dict[str, asyncio.Event] = {}
        # The subscriptions being delivered, by user: this process is the only one that changes
        # them (webhook.create/delete come here), so intake reads them from memory.
        self._by_user: dict[str, dict[str, Subscription]] = {}

    async def start(self) -> None:
        for sub in await self.store.subscriptions():
            self.watch(sub)

    def subscriptions(self, user_id: str) -> list[Subscription]:
        return list(self._by_user.get(user_id, {}).values())

    def watch(self, sub: Subscription) -> None:
        """Start delivering `sub` (once)."""
        self._by_user.setdefault(sub.user_id, {})[sub.id] = sub
        if sub.id not in self._workers:
            self._wake[sub.id] = asyncio.Event()
            self._workers[sub.id] = asyncio.create_task(self._work(sub), name=f"webhook:{sub.id}")

    def wake(self, subscription_id: str) -> None:
        if event := self._wake.get(subscription_id):
            event.set()

    async def forget(self, subscription_id: str) -> None:
        for user_id, subs in list(self._by_user.items()):
            if subs.pop(subscription_id, None) is not None and not subs:
                del self._by_user[user_id]
        task = self._workers.pop(subscription_id, None)
        self._wake.pop(subscription_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        for subscription_id in list(self._workers):
            await self.forget(subscription_id)

    @property
    def workers(self) -> int:
        return len(self._workers)

    async def _work(self, sub: Subscription) -> None:
        wake = self._wake[sub.id]
        while True:
            wake.clear()  # before the read: a wake-up that comes during it is not lost
            try:
                delivery = await self.store.next_pending(sub.id)
                wait = IDLE_CHECK
                if delivery is not None:
                    due = (delivery.next_attempt_at - utcnow()).total_seconds()
                    if due <= 0:
                        await self._attempt(sub, delivery)
                        continue
                    wait = min(due, IDLE_CHECK)
            except asyncio.CancelledError:
                raise
            except Exception:  # MongoDB away, say: the worker must live on and try again
                log.exception("webhook %s: could not read or record a delivery", sub.id)
                wait = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def _attempt(self, sub: Subscription, delivery: Delivery) -> None:
        async with self._slots:
            status, error = await self._post(sub, delivery)
        if status is not None and 200 <= status < 300:
            ATTEMPTS.labels("delivered").inc()
            LATENCY.observe(max(0.0, (utcnow() - delivery.occurred_at).total_seconds()))
            await self.store.record(delivery, "delivered", http_status=status, error=None)
            return
        ATTEMPTS.labels("failed").inc()
        next_at = utcnow() + backoff(delivery.attempts + 1, self.backoff_base, self.backoff_cap)
        if next_at - delivery.occurred_at > self.retry_for:
            GIVEN_UP.inc()
            log.warning("webhook %s: gave up on seq %d after %d attempts: %s", sub.id, delivery.seq,
                        delivery.attempts + 1, error)
            await self.store.record(delivery, "failed", http_status=status, error=error)
            return
        await self.store.record(delivery, "pending", http_status=status, error=error, next_attempt_at=next_at)

    async def _post(self, sub: Subscription, delivery: Delivery) -> tuple[int | None, str | None]:
        """One attempt: the HTTP status (None: no answer) and what went wrong, if anything."""
        try:
            await check_url(sub.url, allow_private=self.allow_private)  # every time: DNS answers change
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(sub.secret, int(time.time()), delivery.body),
                EVENT_ID_HEADER: delivery.event_id,
                SEQ_HEADER: str(delivery.seq),
                "User-Agent": "waha-fleet-webhooks/1",
            }
            response = await self.client.post(sub.url, content=delivery.body, headers=headers)
        except RefusedUrl as exc:
            return None, f"refused: {exc}"[:MAX_ERROR]
        except httpx.HTTPError as exc:
            return None, f"{exc.__class__.__name__}: {describe(exc)}"[:MAX_ERROR]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"answered {response.status_code}"

