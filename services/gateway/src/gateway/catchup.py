"""One socket's events in `seq` order, with nothing missed and nothing twice (docs/reliability.md).

The socket's live queue is bound first (`live.LiveStream`, buffering), then the stored events
after the client's `after` are paged from the persister and sent, then the live ones, skipping
each `seq` already sent. A live event further on than the next `seq` (a hole: the socket's live
queue was bound after it was published, or two persisters published out of order) makes the
missing ones be read from the store first. A user's `seq`s have no holes but where the oldest
expired, so "the next one" is always `last + 1`.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fleet_shared.contracts.stream import MAX_EVENT_PAGE, EventPage, ListEvents

from .bus import Bus

Send = Callable[[dict[str, Any]], Awaitable[None]]


def frame(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


class Sequencer:
    def __init__(self, bus: Bus, user_id: str, send: Send, after: int | None) -> None:
        self._bus = bus
        self._user_id = user_id
        self._send = send
        self.last = after  # the last `seq` sent (None: no `after` and nothing sent yet)

    async def catch_up(self, until: int | None = None) -> None:
        """Send the stored events after `last` (up to `until`, when given), page by page."""
        if self.last is None:
            return
        while until is None or self.last < until:
            query = ListEvents(after=self.last, limit=MAX_EVENT_PAGE)
            page = await self._bus.ask_for(EventPage, self._user_id, query)
            sent = False
            for event in page.items:
                if until is not None and event["seq"] > until:
                    return
                await self._emit(event)
                sent = True
            if not sent:
                return

    async def live(self, event: dict[str, Any]) -> None:
        """One live event: dropped when sent already, after the ones it skipped otherwise."""
        seq = event["seq"]
        if self.last is not None and seq > self.last + 1:
            await self.catch_up(until=seq - 1)
        if self.last is not None and seq <= self.last:
            return
        await self._emit(event)

    async def _emit(self, event: dict[str, Any]) -> None:
        if self.last is not None and event["seq"] <= self.last:
            return
        await self._send(event)
        self.last = event["seq"]
