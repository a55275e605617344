"""MAX_SESSIONS: at most that many sessions run at once (each one costs WAHA memory).

A session holds a slot while the registry says it runs (STARTING, SCAN_QR_CODE, WORKING), and from
the moment it is admitted until WAHA's first report can have arrived (`ADMISSION_GRACE`). Only
bringing a session up asks for a slot: creating, starting or restarting one that is not running;
a session that runs already is never refused.

Within one replica admissions are taken one at a time (count, then mark), so one replica never
overshoots. Replicas do not coordinate: two replicas admitting different users in the same instant
can each see the last free slot, so with R replicas the fleet may briefly run up to R - 1 sessions
more than MAX_SESSIONS. Sessions restarted by reconciliation held a slot before and are not asked.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from .metrics import LIMIT_REFUSALS
from .registry import SessionRegistry

ADMISSION_GRACE = timedelta(seconds=60)


class SessionLimitReached(Exception):
    def __init__(self, running: int, limit: int) -> None:
        super().__init__(f"{running} sessions run; at most {limit} may")
        self.running = running
        self.limit = limit


class Admission:
    def __init__(self, registry: SessionRegistry, max_sessions: int, clock: Callable[[], datetime]) -> None:
        self._registry = registry
        self.max_sessions = max_sessions
        self._clock = clock
        self._lock = asyncio.Lock()

    async def admit(self, user_id: str) -> None:
        """Take a slot for `user_id`'s session, or raise `SessionLimitReached`."""
        async with self._lock:
            now = self._clock()
            running = await self._registry.count_running(exclude=user_id, admitted_since=now - ADMISSION_GRACE)
            if running >= self.max_sessions:
                LIMIT_REFUSALS.inc()
                raise SessionLimitReached(running, self.max_sessions)
            await self._registry.mark_admitted(user_id, now)
