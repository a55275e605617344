"""One socket's events in `seq` order, with nothing missed and nothing twice (docs/reliability.md).

The socket's live queue is bound first (`live.LiveStream`, buffering), then the stored events
after the client's `after` are paged from the persister and sent, then the live ones, skipping
each `seq` already sent. Without `after` the socket starts at the stream's head, read once its
queue is bound (`stream_head`): the live events may come out of order (two persisters publish
independently), so "the first one that comes" is no place to start. A live event further on
than the next `seq` (a hole) makes the missing ones be read from the store first. A user's
`seq`s have no holes but where the oldest expired, so "the next one" is always `last + 1`.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fleet_shared.contracts.stream import MAX_EVENT_PAGE, EventPage, ListEvents

from .bus import Bus

Send = Callable[[dict[str, Any]], Awaitable[None]]


def frame(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


async def stream_head(bus: Bus, user_id: str) -> int:
    """The newest `seq` of the user's stream (0: none yet). Not counted against the user's limits:
    opening a socket costs the broker more (a queue and its bindings) than this read."""
    return (await bus.ask_for(EventPage, user_id, ListEvents(limit=1), limited=False)).last


class Sequencer:
    def __init__(self, bus: Bus, user_id: str, send: Send, after: int) -> None:
        self._bus = bus
        self._user_id = user_id
        self._send = send
        self.last = after  # the last `seq` sent

    async def catch_up(self, until: int | None = None, *, limited: bool = True) -> None:
        """Send the stored events after `last` (up to `until`, when given), page by page.
        `limited=False`: filling a hole the stream left, which the user's limits must not refuse."""
        while until is None or self.last < until:
            query = ListEvents(after=self.last, limit=MAX_EVENT_PAGE)
            page = await self._bus.ask_for(EventPage, self._user_id, query, limited=limited)
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
        if seq > self.last + 1:
            await self.catch_up(until=seq - 1, limited=False)
        await self._emit(event)

    async def _emit(self, event: dict[str, Any]) -> None:
        if event["seq"] <= self.last:
            return
        await self._send(event)
        self.last = event["seq"]
