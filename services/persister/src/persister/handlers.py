"""From a delivery's body to the writes it causes, retrying while MongoDB is briefly unavailable."""

import asyncio
import json
import logging
import time
from collections.abc import Sequence

from fleet_shared.contracts import Envelope, parse_envelope
from fleet_shared.contracts.events import MessageAck, MessageReceived, MessageSent
from fleet_shared.routing import parse_user_key

from .metrics import EVENTS_DUPLICATE, EVENTS_RECEIVED, EVENTS_WRITTEN, WRITE_FAILURES
from .store import ApplyResult, Store, StoreUnavailable

log = logging.getLogger(__name__)

STORED_TYPES = frozenset({MessageReceived.TYPE, MessageSent.TYPE, MessageAck.TYPE})


class MalformedEvent(ValueError):
    """Not an event the persister can ever store; redelivering it cannot help."""


def parse_event(body: bytes, routing_key: str | None = None) -> Envelope:
    """Validate one delivery: a JSON envelope of a stored type whose routing key (if a user key) agrees."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise MalformedEvent("body is not a JSON object")
    if raw.get("type") not in STORED_TYPES:
        raise MalformedEvent(f"not an event the persister stores: {raw.get('type')!r}")
    try:
        env = parse_envelope(raw)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise MalformedEvent(f"invalid {raw.get('type')} envelope: {exc}") from exc
    if routing_key and routing_key.startswith("user."):
        try:
            key = parse_user_key(routing_key)
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from exc
        if key.user_id != env.user_id or key.type != env.type:
            raise MalformedEvent(f"routing key {routing_key!r} does not match the envelope's user and type")
    return env


class EventHandler:
    def __init__(self, store: Store, *, retry_timeout: float, backoff: float, max_backoff: float) -> None:
        self.store = store
        self.retry_timeout = retry_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def handle(self, events: Sequence[Envelope]) -> ApplyResult:
        """Store the events; keep retrying transient failures until `retry_timeout`, then raise
        `StoreUnavailable` (the caller hands the deliveries back without acking them)."""
        deadline = time.monotonic() + self.retry_timeout
        delay = self.backoff
        while True:
            try:
                result = await self.store.apply(events)
                break
            except StoreUnavailable as exc:
                WRITE_FAILURES.inc()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                log.warning("MongoDB did not take %d event(s), retrying in %.1fs: %s", len(events), delay, exc)
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, self.max_backoff)
        for env in events:
            EVENTS_RECEIVED.labels(env.type).inc()
        EVENTS_WRITTEN.inc(result.written)
        EVENTS_DUPLICATE.inc(result.duplicates)
        return result
