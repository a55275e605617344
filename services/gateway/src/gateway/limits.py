"""Per-user limits on what one gateway process sends over RabbitMQ: requests waiting for their answer,
and a rate (a token bucket). Beyond either: 429 with Retry-After, and nothing is published.

Why both: the orchestrator runs each user's commands one at a time, in a partition shared with
~1/16 of the fleet and consumed with prefetch COMMAND_PREFETCH. A user with more commands waiting
than that would fill the partition's prefetch and delay everyone in it; USER_MAX_PENDING (well
below COMMAND_PREFETCH, per gateway replica) keeps a free slot for the others. The rate keeps
a user who waits for each answer from keeping the orchestrator and WAHA busy on their own.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fleet_shared.http import ApiError

# Users remembered at once; the least recently seen idle ones are forgotten first.
MAX_TRACKED_USERS = 100_000


@dataclass
class _User:
    tokens: float
    refilled_at: float
    pending: int = 0


class UserLimits:
    def __init__(
        self, max_pending: int, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
        max_users: int = MAX_TRACKED_USERS,
    ) -> None:
        self.max_pending, self.rate, self.burst = max_pending, rate, burst
        self._clock = clock
        self._max_users = max_users
        self._users: OrderedDict[str, _User] = OrderedDict()

    @contextmanager
    def admit(self, user_id: str) -> Iterator[None]:
        """Hold one of the user's pending slots for the `with` block, or raise 429."""
        user = self._user(user_id)
        if user.pending >= self.max_pending:
            raise ApiError(429, "too_many_requests",
                           f"{self.max_pending} requests of yours are still waiting for their answer (USER_MAX_PENDING)",
                           {"Retry-After": "1"})
        self._refill(user)
        if user.tokens < 1:
            wait = math.ceil((1 - user.tokens) / self.rate)
            raise ApiError(429, "too_many_requests", f"more than {self.rate:g} requests per second (USER_RATE)",
                           {"Retry-After": str(max(1, wait))})
        user.tokens -= 1
        user.pending += 1
        try:
            yield
        finally:
            user.pending -= 1

    def _user(self, user_id: str) -> _User:
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = _User(tokens=self.burst, refilled_at=self._clock())
            if len(self._users) > self._max_users:
                self._forget_one_idle()
        else:
            self._users.move_to_end(user_id)
        return user

    def _refill(self, user: _User) -> None:
        now = self._clock()
        user.tokens = min(self.burst, user.tokens + (now - user.refilled_at) * self.rate)
        user.refilled_at = now

    def _forget_one_idle(self) -> None:
        for user_id, user in self._users.items():
            if user.pending == 0:
                del self._users[user_id]
                return
