"""Per-user serialization inside one replica (ADR 0002).

A partition queue hands this replica many users' messages at once (prefetch > 1). Each user's run
one at a time, in the order they arrived; different users' run concurrently, so one user's slow
WAHA call delays nobody else.

Arrival order is kept because a turn is taken synchronously when `turn()` is entered, before the
first await: deliveries reach the handler in the order the broker sent them (each delivery is one
task, started in order, with no I/O before the handler), and asyncio.Lock wakes its waiters first
in, first out and does not let a newcomer overtake them. A user's lock is dropped as soon as
nobody holds or waits for it, so idle users cost nothing.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _Slot:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class UserSerializer:
    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    @property
    def active_users(self) -> int:
        """Users with something running or waiting (tests and the in-flight gauge)."""
        return len(self._slots)

    def pending(self, user_id: str) -> int:
        slot = self._slots.get(user_id)
        return slot.users if slot else 0

    @asynccontextmanager
    async def turn(self, user_id: str) -> AsyncIterator[None]:
        slot = self._slots.get(user_id)
        if slot is None:
            slot = self._slots[user_id] = _Slot()
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0 and self._slots.get(user_id) is slot:
                del self._slots[user_id]
