"""EventBatcher: concurrent deliveries share one write, and each learns how the write holding it went."""

import asyncio

import pytest
from pymongo.errors import OperationFailure

from persister.batching import EventBatcher
from persister.store import StoreUnavailable


class FakeHandle:
    def __init__(self, refuse: set[str] = frozenset(), unavailable: bool = False, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.refuse, self.unavailable, self.delay = refuse, unavailable, delay

    async def __call__(self, events) -> None:
        ids = [e.id for e in events]
        self.calls.append(ids)
        await asyncio.sleep(self.delay)
        if self.unavailable:
            raise StoreUnavailable("down")
        if self.refuse & set(ids):
            raise OperationFailure("refused", code=2)


async def submit_all(batcher: EventBatcher, envs) -> list[BaseException | None]:
    return await asyncio.gather(*(batcher.submit(e) for e in envs), return_exceptions=True)


async def test_concurrent_events_are_written_together(events):
    handle = FakeHandle()
    envs = [events.received("alice") for _ in range(10)]
    results = await submit_all(EventBatcher(handle, max_size=100, window=0.01), envs)
    assert results == [None] * 10
    assert handle.calls == [[e.id for e in envs]]


async def test_batches_never_exceed_max_size(events):
    handle = FakeHandle(delay=0.01)
    envs = [events.received("alice") for _ in range(25)]
    results = await submit_all(EventBatcher(handle, max_size=10, window=0.01, writers=1), envs)
    assert results == [None] * 25
    assert [len(c) for c in handle.calls] == [10, 10, 5]
    assert sorted(i for c in handle.calls for i in c) == sorted(e.id for e in envs)


async def test_a_refused_event_fails_alone(events):
    envs = [events.received("alice") for _ in range(4)]
    handle = FakeHandle(refuse={envs[2].id})
    results = await submit_all(EventBatcher(handle, max_size=100, window=0.01), envs)
    assert [r is None for r in results] == [True, True, False, True]
    assert isinstance(results[2], OperationFailure)
    assert handle.calls[0] == [e.id for e in envs] and len(handle.calls) == 5  # the batch, then one by one


async def test_an_unavailable_store_fails_the_whole_batch(events):
    envs = [events.received("alice") for _ in range(3)]
    results = await submit_all(EventBatcher(FakeHandle(unavailable=True), max_size=100, window=0.01), envs)
    assert all(isinstance(r, StoreUnavailable) for r in results)


async def test_a_lone_event_waits_no_longer_than_the_window(events):
    handle = FakeHandle()
    batcher = EventBatcher(handle, max_size=100, window=0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await batcher.submit(events.received("alice"))
    assert loop.time() - started < 0.5
    assert batcher.pending == 0


def test_settings_are_checked():
    with pytest.raises(ValueError):
        EventBatcher(FakeHandle(), max_size=0, window=0.01)
