"""Gathering concurrent deliveries into one write (docs/adr/0007-persister-batching-with-manual-acks.md).

Every delivery of `<p>.persister.events` is handled in a task of its own (up to `PREFETCH` at
once). Each hands its event to `EventBatcher.submit` and waits: the batcher gathers events for at
most `BATCH_WINDOW` (or until `BATCH_MAX_SIZE` are waiting), writes them with one
`EventHandler.handle` call (one unordered bulk write per collection) and then tells every waiting
delivery how the write that held its event went. The delivery is acked only after that, so:

- the write succeeded: every delivery of the batch is acked;
- MongoDB stayed unavailable (`StoreUnavailable`, after the handler's retry window): every
  delivery gets that error and is handed back to the queue, nothing is acked;
- MongoDB refused a write for good (any other `PyMongoError`): the events are written again one by
  one (harmless: every write is idempotent), so only the event that is refused gets the error and
  is dead-lettered, and the others are acked.

At most `writers` batches are written at once; while they are busy, the next batch keeps
gathering, so under load batches grow by themselves and an idle persister waits no longer than
the window.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from pymongo.errors import PyMongoError

from fleet_shared.contracts import Envelope

from .store import StoreUnavailable

log = logging.getLogger(__name__)

Handle = Callable[[Sequence[Envelope]], Awaitable[object]]


class EventBatcher:
    def __init__(self, handle: Handle, *, max_size: int, window: float, writers: int = 2) -> None:
        if max_size < 1 or writers < 1 or window < 0:
            raise ValueError("max_size and writers must be at least 1, window not negative")
        self._handle = handle
        self._max_size = max_size
        self._window = window
        self._writers = writers
        self._pending: list[tuple[Envelope, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing = 0
        self._tasks: set[asyncio.Task] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, env: Envelope) -> None:
        """Return once the write that held `env` succeeded; raise what made it fail."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((env, future))
        self._schedule(now=False)
        await future

    def _schedule(self, *, now: bool) -> None:
        if not self._pending or self._writing >= self._writers:
            return  # a write in progress schedules the rest when it ends
        if now or len(self._pending) >= self._max_size:
            self._start_write()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._on_window)

    def _on_window(self) -> None:
        self._timer = None
        self._schedule(now=True)

    def _start_write(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
        self._writing += 1
        task = asyncio.create_task(self._write(batch), name="persister-batch-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # Another writer may take what is left over at once.
        self._schedule(now=False)

    async def _write(self, batch: list[tuple[Envelope, asyncio.Future[None]]]) -> None:
        try:
            await self._handle([env for env, _ in batch])
        except StoreUnavailable as exc:
            _fail(batch, exc)
        except PyMongoError as exc:
            if len(batch) == 1:
                _fail(batch, exc)
            else:
                log.warning("a batch of %d event(s) was refused (%s); writing them one by one", len(batch), exc)
                await self._one_by_one(batch)
        except asyncio.CancelledError:
            _fail(batch, StoreUnavailable("the write was cancelled (shutting down)"))
            raise
        except Exception as exc:  # anything else fails the batch's deliveries, never silently
            _fail(batch, exc)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
        finally:
            self._writing -= 1
            # The rest gathered while this one wrote: it has waited long enough.
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._schedule(now=True)

    async def _one_by_one(self, batch: list[tuple[Envelope, asyncio.Future[None]]]) -> None:
        for env, future in batch:
            try:
                await self._handle([env])
            except Exception as exc:
                _fail([(env, future)], exc)
            else:
                if not future.done():
                    future.set_result(None)


def _fail(batch: list[tuple[Envelope, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
