"""A bounded memory of the newest time seen per key (which users were active, and when)."""

import itertools
from datetime import datetime


class RecentTimes:
    """key -> the newest time noted for it, for at most `capacity` keys.

    Past `capacity`, the tenth of the keys noted longest ago is forgotten at once (not one per
    newcomer). Users of it treat a forgotten key as never seen, which costs them one redundant
    write or message, never a wrong answer.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 10:
            raise ValueError("capacity must be at least 10")
        self.capacity = capacity
        self._times: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._times)

    def get(self, key: str) -> datetime | None:
        return self._times.get(key)

    def note(self, key: str, at: datetime, *, exact: bool = False) -> None:
        """`at` is the key's newest time (`exact`: even if an earlier note was later)."""
        previous = self._times.pop(key, None)  # re-inserted last: the dict's order is least recent first
        self._times[key] = at if previous is None or exact else max(previous, at)
        if len(self._times) > self.capacity:
            for old in list(itertools.islice(self._times, self.capacity // 10)):
                del self._times[old]
