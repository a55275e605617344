"""What this process wrote a moment ago, so the same event coming again costs no MongoDB command.

Each message arrives more than once within a second or so: a sent message as the orchestrator's
`message.sent` and as WAHA's `message.any` of it (the same event id, the same content), and every
webhook WAHA retries. Their writes are replays, which change nothing (`writes.py`), and their `seq`
is the one the first copy got (`eventlog.py`). Only what a write that succeeded stored is
remembered, for at most `max_age` (far below the events' retention) and at most `size` entries;
a miss only means the write is made, as without this memory.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_SIZE = 10_000
DEFAULT_MAX_AGE = 30.0  # seconds; EVENT_RETENTION is at least a minute


class Recent(Generic[K, V]):
    def __init__(self, size: int = DEFAULT_SIZE, max_age: float = DEFAULT_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry[0] > self._max_age:
            del self._entries[key]
            return None
        return entry[1]

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), value)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
