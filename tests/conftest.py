"""The whole system as real processes: SecantusDB, the WAHA emulator, the four services, on the real broker."""

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fleet_shared.localdev import free_port
from fleet_shared.testing.fixtures import delete_topology
from fleet_shared.topology import Topology
from local_launcher.stack import DEFAULT_PORTS, Stack, StackConfig
from local_launcher.tokens import make_token

PARTITIONS = 4
SECRETS = {
    "JWT_SECRET": "e2e-jwt-" + uuid.uuid4().hex,
    "WAHA_API_KEY": "e2e-waha-" + uuid.uuid4().hex,
    "WEBHOOK_HMAC_KEY": "e2e-hmac-" + uuid.uuid4().hex,
}
FAST_EMULATOR = {
    "WAHA_EMULATOR_STARTING_DELAY": "0.1",
    "WAHA_EMULATOR_ACK_DELAY": "0.1",
    "WAHA_EMULATOR_QR_FIRST_LIFETIME": "60",
    "WAHA_EMULATOR_QR_NEXT_LIFETIME": "20",
}


def stack_config(rabbitmq_url: str, log_dir: Path, *, tag: str = "e2e", env: dict[str, str] | None = None,
                 mongo_storage: str = ":memory:") -> StackConfig:
    """The whole system on free ports under a fresh BROKER_PREFIX; `env` adds or overrides settings."""
    return StackConfig(
        env={
            "ENVIRONMENT": "dev",
            "RABBITMQ_URL": rabbitmq_url,
            "BROKER_PREFIX": f"{tag}{uuid.uuid4().hex[:8]}",
            "ORCHESTRATOR_PARTITIONS": str(PARTITIONS),
            "REQUEST_TIMEOUT": "15s",
            "LOG_LEVEL": "INFO",
            **SECRETS,
            **FAST_EMULATOR,
            **(env or {}),
        },
        ports={name: free_port() for name in DEFAULT_PORTS},
        mongo_storage=mongo_storage,
        log_dir=log_dir,
    )


@contextmanager
def launched(config: StackConfig, rabbitmq_url: str) -> Iterator[Stack]:
    """Start the system, hand it over, stop it and delete its topology (through `rabbitmq_url`)."""
    system = Stack(config)
    try:
        system.start()
    except Exception:
        system.stop()
        _print_logs(config.log_dir)
        raise
    try:
        yield system
    finally:
        system.stop()
        asyncio.run(delete_topology(rabbitmq_url, Topology(config.env["BROKER_PREFIX"], PARTITIONS)))


def _print_logs(log_dir: Path | None) -> None:
    for log in sorted(log_dir.glob("*.log")) if log_dir else ():
        print(f"----- {log.name}\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def stack(rabbitmq_url, tmp_path_factory):
    with launched(stack_config(rabbitmq_url, tmp_path_factory.mktemp("e2e-logs")), rabbitmq_url) as system:
        yield system


@pytest.fixture(scope="session")
def topology(stack) -> Topology:
    return Topology(stack.config.env["BROKER_PREFIX"], PARTITIONS)


def token_for(user_id: str, **kw) -> str:
    return make_token(SECRETS["JWT_SECRET"], user_id, **kw)


@pytest.fixture
async def gateway(stack):
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture
async def waha(stack):
    async with httpx.AsyncClient(base_url=stack.waha_url, timeout=30) as client:
        yield client
        await client.post("/_emulator/faults", json={})


def auth(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}
