"""The orchestrator's background jobs: reconcile with WAHA at start-up, sweep idle sessions.

Neither touches a session itself. Each finds the users concerned and sends a command through the
user's partition (`user.<id>.session.reconcile` / `.idle_stop`, published to
`<p>.orchestrator.partition`, which hashes `x-user-id` like for every command), so the one
replica that drives the user applies it (`handlers/upkeep.py`), in order with the user's own commands.
Every replica runs both jobs; a user may get the same command from two replicas, and the second
finds nothing left to do.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Contract, envelope, new_id
from fleet_shared.contracts.admin import IdleStopSession, ReconcileSession, ReconfigureSession
from fleet_shared.ids import session_name_for

from ..adapters.ports import CommandPublisher, FleetRecords, Waha, WahaError
from ..domain.reconciliation import outdated_configs, reconcile_plan

log = logging.getLogger(__name__)

SWEEP_BATCH = 500  # idle users sent per sweep (the rest follow at the next one)
CONNECT_POLL = 0.2
RETRY_FIRST, RETRY_MAX = 0.5, 30.0

class UpkeepJobs:
    def __init__(
        self,
        *,
        registry: FleetRecords,
        waha: Waha,
        commands: CommandPublisher,
        connected: Callable[[], bool],
        idle_timeout: timedelta,
        sweep_interval: timedelta,
        clock: Callable[[], datetime],
        desired_config: Callable[[str], dict],
        rollout_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        self._registry = registry
        self._waha = waha
        self._commands = commands
        self._connected = connected
        self._idle_timeout = idle_timeout
        self._sweep_interval = sweep_interval.total_seconds()
        self._clock = clock
        self._desired_config = desired_config
        self._rollout_interval = rollout_interval.total_seconds()
        self._tasks: list[asyncio.Task] = []
        self.reconciled = asyncio.Event()  # set once the start-up reconciliation was sent

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._reconcile_at_startup(), name="orchestrator-reconcile"),
            asyncio.create_task(self._sweep_forever(), name="orchestrator-idle-sweep"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _send(self, payload: Contract, user_id: str, correlation_id: str) -> None:
        env = envelope(payload, user_id, session=session_name_for(user_id), correlation_id=correlation_id)
        await self._commands.send(env)

    async def reconcile_once(self) -> list[str]:
        """Send `session.reconcile` for every user whose registry record and WAHA session disagree,
        and start rolling the current config out to the sessions that have an older one."""
        sessions = await self._waha.list_sessions()
        users = reconcile_plan(sessions, await self._registry.not_stopped())
        correlation_id = f"reconcile-{new_id()}"
        for user_id in users:
            await self._send(ReconcileSession(), user_id, correlation_id)
        outdated = outdated_configs(sessions, self._desired_config)
        log.info(
            "start-up reconciliation: %d WAHA session(s), %d user(s) to repair, %d with an older config",
            len(sessions), len(users), len(outdated),
        )
        if outdated:
            self._tasks.append(asyncio.create_task(self.roll_out(outdated), name="orchestrator-config-rollout"))
        return users

    async def roll_out(self, users: list[str]) -> None:
        """`session.reconfigure` for each of `users`, one every CONFIG_ROLLOUT_INTERVAL: WAHA restarts
        a session to change its config, and not every session at once."""
        correlation_id = f"config-rollout-{new_id()}"
        for n, user_id in enumerate(users):
            if n:
                await asyncio.sleep(self._rollout_interval)
            try:
                await self._send(ReconfigureSession(), user_id, correlation_id)
            except BrokerUnavailable as exc:
                log.warning("config roll-out stopped at %s (%d left; the next start-up goes on): %s", user_id,
                            len(users) - n, exc)
                return
        log.info("config roll-out done: %d session(s) given the current config", len(users))

    async def sweep_once(self) -> list[str]:
        """Send `session.idle_stop` for every session idle for longer than SESSION_IDLE_TIMEOUT."""
        users = await self._registry.idle_users(self._clock() - self._idle_timeout, SWEEP_BATCH)
        correlation_id = f"idle-sweep-{new_id()}"
        for user_id in users:
            await self._send(IdleStopSession(), user_id, correlation_id)
        if users:
            log.info("idle sweep: %d session(s) idle for %s", len(users), self._idle_timeout)
        return users

    async def _wait_connected(self) -> None:
        while not self._connected():
            await asyncio.sleep(CONNECT_POLL)

    async def _reconcile_at_startup(self) -> None:
        await self._wait_connected()
        delay = RETRY_FIRST
        while True:
            try:
                await self.reconcile_once()
            except (WahaError, PyMongoError, BrokerUnavailable) as exc:
                log.warning("start-up reconciliation failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            self.reconciled.set()
            return

    async def _sweep_forever(self) -> None:
        await self._wait_connected()
        while True:
            # Jittered, so replicas started together do not sweep in lockstep.
            await asyncio.sleep(self._sweep_interval * random.uniform(0.8, 1.2))
            try:
                await self.sweep_once()
            except (PyMongoError, BrokerUnavailable) as exc:
                log.warning("idle sweep failed: %r", exc)
