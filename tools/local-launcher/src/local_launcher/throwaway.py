"""A whole system for tests and benchmarks: free ports, a fresh BROKER_PREFIX, fast emulator timings."""

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet_devtools.localdev import free_port
from fleet_devtools.testing.fixtures import delete_topology
from fleet_shared.topology import Topology

from .stack import DEFAULT_PORTS, Stack, StackConfig

PARTITIONS = 4
SECRETS = {
    "JWT_SECRET": "throwaway-jwt-" + uuid.uuid4().hex,
    "WAHA_API_KEY": "throwaway-waha-" + uuid.uuid4().hex,
    "WEBHOOK_HMAC_KEY": "throwaway-hmac-" + uuid.uuid4().hex,
}
# A session shows its QR 0.1 s after start; acks follow a sent message by 0.1 s.
FAST_EMULATOR = {
    # As NOWEB: no store unless a session's config enables it (the orchestrator's does).
    "WAHA_EMULATOR_STORE_DEFAULT": "False",
    "WAHA_EMULATOR_STARTING_DELAY": "0.1",
    "WAHA_EMULATOR_ACK_DELAY": "0.1",
    "WAHA_EMULATOR_QR_FIRST_LIFETIME": "60",
    "WAHA_EMULATOR_QR_NEXT_LIFETIME": "20",
}


def throwaway_config(rabbitmq_url: str, log_dir: Path, *, tag: str = "e2e", env: dict[str, str] | None = None,
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
            # Tests send media from files they serve on 127.0.0.1.
            "MEDIA_URL_ALLOW_PRIVATE": "true",
            # ... and receive webhooks on 127.0.0.1.
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
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
        print_logs(config.log_dir)
        raise
    try:
        yield system
    finally:
        system.stop()
        partitions = int(config.env["ORCHESTRATOR_PARTITIONS"])
        asyncio.run(delete_topology(rabbitmq_url, Topology(config.env["BROKER_PREFIX"], partitions)))


def print_logs(log_dir: Path | None) -> None:
    for log in sorted(log_dir.glob("*.log")) if log_dir else ():
        print(f"----- {log.name}\n{log.read_text()[-4000:]}")
