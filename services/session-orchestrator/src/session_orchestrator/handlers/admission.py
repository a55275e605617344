"""MAX_SESSIONS: at most that many sessions run at once (each one costs WAHA memory); how a slot
is held and each request decided: `domain/admission.py`. Only bringing a session up asks for a
slot: creating, starting or restarting one that is not running; a session that runs already is
never refused.

Within one replica admissions are decided one batch at a time, in arrival order: the requests that
came while the previous batch was being decided are counted together (one count for the batch, not
one per session, which under a burst of starts was the whole cost) and marked admitted before the
next batch is counted, so one replica never overshoots. The count (`SlotCounter.count_running`) is
two indexed counts, sessions admitted and not running yet, then running ones; a session whose
first report lands between the two is counted twice for that instant (a refusal one slot early at
worst), never missed.

Replicas do not coordinate: two replicas admitting different users in the same instant can each
see the last free slot, so with R replicas the fleet may briefly run up to R - 1 sessions more than
MAX_SESSIONS. Sessions restarted by reconciliation held a slot before and are not asked.
"""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from ..adapters.ports import SlotCounter
from ..domain.admission import ADMISSION_GRACE, decide_batch
from ..metrics import LIMIT_REFUSALS


class SessionLimitReached(Exception):
    def __init__(self, running: int, limit: int) -> None:
        super().__init__(f"{running} sessions run; at most {limit} may")
        self.running = running
        self.limit = limit


class Admission:
    def __init__(self, slots: SlotCounter, max_sessions: int, clock: Callable[[], datetime]) -> None:
        self._slots = slots
        self.max_sessions = max_sessions
        self._clock = clock
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self._decider: asyncio.Task[None] | None = None

    async def admit(self, user_id: str) -> None:
        """Take a slot for `user_id`'s session, or raise `SessionLimitReached`."""
        decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((user_id, decided))
        if self._decider is None or self._decider.done():
            self._decider = asyncio.create_task(self._decide_all())
        await decided  # cancelling the caller cancels the request (skipped unless already decided)

    async def close(self) -> None:
        """Stop deciding (shutting down): requests not decided yet are cancelled."""
        if self._decider is not None and not self._decider.done():
            self._decider.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._decider
        waiting, self._waiting = self._waiting, []
        for _, decided in waiting:
            decided.cancel()

    async def _decide_all(self) -> None:
        """The one task that decides: batch after batch, until nobody waits."""
        while self._waiting:
            batch, self._waiting = self._waiting, []
            batch = [(user, decided) for user, decided in batch if not decided.done()]
            try:
                if batch:
                    await self._decide(batch)
            except Exception as exc:  # the registry failed: this batch's requests fail with it
                for _, decided in batch:
                    if not decided.done():
                        decided.set_exception(exc)
            except BaseException:  # cancelled (shutting down): so are the requests
                for _, decided in batch:
                    decided.cancel()
                raise

    async def _decide(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        now = self._clock()
        since = now - ADMISSION_GRACE
        users = [user for user, _ in batch]
        if len(users) == 1:
            # Alone: the count without the user's own record is exactly what is needed.
            holding = await self._slots.count_running(exclude=users[0], admitted_since=since)
            held: set[str] = set()
        else:
            # Everyone else's slots, plus those of the batch that already hold one (each is then
            # decided without its own, as if it were alone).
            held = await self._slots.holding_slots(users, admitted_since=since)
            holding = await self._slots.count_running(exclude=users, admitted_since=since) + len(held)
        # A requester that gave up while the batch was counted takes no slot.
        batch = [(user, decided) for user, decided in batch if not decided.done()]
        admitted: list[tuple[str, asyncio.Future[None]]] = []
        decisions = decide_batch([user for user, _ in batch], holding, held, self.max_sessions)
        for (user, decided), refused in zip(batch, decisions, strict=True):
            if refused is not None:
                LIMIT_REFUSALS.inc()
                decided.set_exception(SessionLimitReached(refused.running, self.max_sessions))
            else:
                admitted.append((user, decided))
        marks = await asyncio.gather(
            *(self._slots.mark_admitted(user, now) for user, _ in admitted), return_exceptions=True
        )
        for (_, decided), outcome in zip(admitted, marks, strict=True):
            if decided.done():
                continue  # the requester gave up meanwhile; the slot stays held until the grace ends
            if isinstance(outcome, BaseException):
                decided.set_exception(outcome)
            else:
                decided.set_result(None)
