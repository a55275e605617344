"""From a delivery's body to the writes it causes, retrying while MongoDB is briefly unavailable."""

import asyncio
import logging
import time
from collections.abc import Sequence

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.events import (
    ChatRead,
    ChatUpdated,
    ContactLidsMapped,
    MessageAck,
    MessageEdited,
    MessageImported,
    MessageMediaUpdated,
    MessageReaction,
    MessageReceived,
    MessageRevoked,
    MessageSent,
    SessionQrUpdated,
    SessionStatusChanged,
)
from fleet_shared.contracts.stream import STREAMED_TYPES
from fleet_shared.inbound import BadDelivery, UnexpectedType, read_delivery

from .eventlog import EventLog, PublishStored
from .metrics import EVENTS_DUPLICATE, EVENTS_RECEIVED, EVENTS_STREAMED, EVENTS_WRITTEN, WRITE_FAILURES
from .store import ApplyResult, Store, StoreUnavailable

log = logging.getLogger(__name__)

STORED_TYPES = frozenset(
    m.TYPE
    for m in (
        MessageReceived, MessageSent, MessageImported, MessageAck, MessageReaction, MessageEdited, MessageRevoked,
        MessageMediaUpdated, ChatRead, ChatUpdated, ContactLidsMapped, SessionStatusChanged, SessionQrUpdated,
    )
)


class MalformedEvent(ValueError):
    """Not an event the persister can ever store; redelivering it cannot help."""


def parse_event(body: bytes, routing_key: str | None = None) -> Envelope:
    """One delivery as an event the persister stores (`fleet_shared.inbound`: a replay through the
    default exchange carries its queue's name as key and is taken on its envelope's word)."""
    try:
        return read_delivery(body, routing_key, types=STORED_TYPES, replays=True)
    except UnexpectedType as exc:
        raise MalformedEvent(f"not an event the persister stores: {exc.message_type!r}") from exc
    except BadDelivery as exc:
        raise MalformedEvent(str(exc)) from exc


class EventHandler:
    def __init__(
        self,
        store: Store,
        *,
        retry_timeout: float,
        backoff: float,
        max_backoff: float,
        event_log: EventLog | None = None,
        publish: PublishStored | None = None,
    ) -> None:
        self.store = store
        self.event_log = event_log or EventLog(store.db)
        self.publish = publish
        self.retry_timeout = retry_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def handle(self, events: Sequence[Envelope]) -> ApplyResult:
        """Store the events, number the public ones into their users' streams and publish those
        (`publish`); keep retrying transient failures until `retry_timeout`, then raise
        `StoreUnavailable` (the caller hands the deliveries back without acking them). Every step
        is idempotent: a redelivered batch writes nothing new and publishes the same `seq`s again."""
        streamed = [env for env in events if env.type in STREAMED_TYPES]
        deadline = time.monotonic() + self.retry_timeout
        delay = self.backoff
        while True:
            try:
                result = await self.store.apply(events)
                stored = await self.event_log.append(streamed, then=self.publish)
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
        EVENTS_STREAMED.inc(len(stored))
        return result
