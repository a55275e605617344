"""The whole system as real processes: SecantusDB, the WAHA emulator, the four services, on the real broker."""


import httpx
import pytest

from fleet_shared.topology import Topology
from local_launcher.throwaway import PARTITIONS, SECRETS, launched, throwaway_config
from local_launcher.tokens import make_token

# The names the test modules import from here.
__all__ = ["PARTITIONS", "SECRETS", "auth", "launched", "stack_config", "token_for"]
stack_config = throwaway_config


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
