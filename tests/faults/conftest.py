"""One system for the fault tests, built so that each of its dependencies can be broken and mended.

- Every service reaches RabbitMQ through a `TcpProxy`: stopping it cuts exactly this system's
  connections (the shared broker, and everyone else's tests on it, are left alone).
- SecantusDB keeps its data on disk, so it can be stopped and started again without losing it.
- Retry windows are short, so a fault test takes seconds, not minutes.

Each test starts from a healthy system (`healthy` checks it) and leaves one behind: whatever a
test broke is mended in its own `finally`, and `healthy` mends again what a failed test left.
"""

import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_devtools.testing.proxy import TcpProxy

from ..conftest import launched, stack_config
from ..helpers import all_ready

FAULT_SETTINGS = {
    # persister: retry a write MongoDB cannot take for 2 s, then hand the delivery back to the queue
    "WRITE_RETRY_TIMEOUT": "2s",
    "WRITE_RETRY_BACKOFF": "100ms",
    "WRITE_RETRY_MAX_BACKOFF": "500ms",
    # orchestrator: WAHA retries stay within a few seconds
    "WAHA_ATTEMPTS": "4",
    "WAHA_BACKOFF_BASE": "200ms",
    "WAHA_BACKOFF_MAX": "1s",
    "WAHA_TIMEOUT": "5s",
    # media copied out of WAHA: 4 tries within a few seconds
    "MEDIA_FETCH_ATTEMPTS": "4",
    "MEDIA_FETCH_BACKOFF_MAX": "1s",
    # webhook-dispatcher: retries within a second
    "WEBHOOK_BACKOFF": "100ms",
    "WEBHOOK_MAX_BACKOFF": "1s",
    "WEBHOOK_TIMEOUT": "5s",
    # history import: a dead replica's import is taken over 2 s after it last renewed its lease
    "HISTORY_LEASE": "2s",
    "HISTORY_RESUME_INTERVAL": "300ms",
    "HISTORY_BACKOFF_MAX": "1s",
}


@pytest.fixture(scope="package")
def broker_proxy(rabbitmq_url):
    with TcpProxy.to_url(rabbitmq_url) as proxy:
        yield proxy


@pytest.fixture(scope="package")
def fault_stack(rabbitmq_url, broker_proxy, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("faults-logs")
    config = stack_config(
        broker_proxy.url_for(rabbitmq_url), log_dir, tag="flt", env=FAULT_SETTINGS, mongo_storage=str(log_dir / "mongodb")
    )
    with launched(config, rabbitmq_url) as system:
        yield system


def mend(stack, proxy: TcpProxy) -> None:
    """Undo any fault: broker reachable, MongoDB and every process running."""
    proxy.up()
    if stack.mongo is not None and stack.mongo.process is not None and stack.mongo.process.poll() is not None:
        stack.mongo.start()
    for child in stack.crashed():
        child.start(stack.env)


@pytest.fixture
async def healthy(fault_stack, broker_proxy):
    """The fault stack, every service ready; mended and emulator faults cleared after the test."""
    mend(fault_stack, broker_proxy)
    await wait_until(lambda: all_ready(fault_stack), timeout=30, what="every service ready")
    yield fault_stack
    mend(fault_stack, broker_proxy)
    async with httpx.AsyncClient(base_url=fault_stack.waha_url) as waha:
        await waha.post("/_emulator/faults", json={})


@pytest.fixture
def stack(healthy):
    """Here the root `gateway` and `waha` clients talk to the fault stack."""
    return healthy


@pytest.fixture
async def persister(healthy):
    async with httpx.AsyncClient(base_url=healthy.url("persister"), timeout=10) as client:
        yield client
