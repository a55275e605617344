"""Per-user serialization: one user's work in arrival order, different users at the same time."""

import asyncio

from session_orchestrator.entrypoints.ordering import UserSerializer


async def test_one_users_work_runs_in_arrival_order_one_at_a_time():
    serializer = UserSerializer()
    order: list[int] = []
    running = 0
    most = 0

    async def job(i: int) -> None:
        nonlocal running, most
        async with serializer.turn("alice"):
            running += 1
            most = max(most, running)
            # later jobs finish their sleep first if they were not serialized
            await asyncio.sleep(0.01 * (10 - i) / 10)
            order.append(i)
            running -= 1

    await asyncio.gather(*(job(i) for i in range(10)))
    assert order == list(range(10))
    assert most == 1
    assert serializer.active_users == 0


async def test_different_users_run_concurrently():
    serializer = UserSerializer()
    slow_started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with serializer.turn("alice"):
            slow_started.set()
            await release.wait()

    task = asyncio.create_task(slow())
    await slow_started.wait()
    # bob is not held up by alice
    async with asyncio.timeout(1):
        async with serializer.turn("bob"):
            pass
    assert serializer.pending("alice") == 1
    release.set()
    await task
    assert serializer.active_users == 0


async def test_a_failing_turn_releases_the_user():
    serializer = UserSerializer()

    async def boom() -> None:
        async with serializer.turn("alice"):
            raise RuntimeError("boom")

    results = await asyncio.gather(boom(), boom(), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    async with asyncio.timeout(1):
        async with serializer.turn("alice"):
            pass
    assert serializer.active_users == 0
