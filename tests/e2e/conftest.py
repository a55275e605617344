"""The whole system as real processes: SecantusDB, the WAHA emulator, the four services, on the real broker."""

import uuid
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


@pytest.fixture(scope="session")
def stack(rabbitmq_url, tmp_path_factory):
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    log_dir: Path = tmp_path_factory.mktemp("e2e-logs")
    config = StackConfig(
        env={
            "ENVIRONMENT": "dev",
            "RABBITMQ_URL": rabbitmq_url,
            "BROKER_PREFIX": prefix,
            "ORCHESTRATOR_PARTITIONS": str(PARTITIONS),
            "REQUEST_TIMEOUT": "15s",
            "LOG_LEVEL": "INFO",
            **SECRETS,
            **FAST_EMULATOR,
        },
        ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=log_dir,
    )
    system = Stack(config)
    try:
        system.start()
    except Exception:
        system.stop()
        _print_logs(log_dir)
        raise
    yield system
    system.stop()
    import asyncio

    asyncio.run(delete_topology(rabbitmq_url, Topology(prefix, PARTITIONS)))


def _print_logs(log_dir: Path) -> None:
    for log in sorted(log_dir.glob("*.log")):
        print(f"----- {log.name}\n{log.read_text()[-4000:]}")


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
