"""Keep trying to reach RabbitMQ until the RpcClient is connected; the app serves meanwhile (503s)."""

import asyncio
import contextlib
import logging

from fleet_shared.broker import RpcClient
from fleet_shared.topology import Topology, declare_topology_at

log = logging.getLogger(__name__)

FIRST_RETRY = 0.5
MAX_RETRY = 5.0


async def connect_until_up(rpc: RpcClient, url: str, topology: Topology) -> None:
    """Declare the topology and connect; retry with backoff until it works (or the task is cancelled).

    Once connected, aio-pika's robust connection handles later outages itself.
    """
    delay = FIRST_RETRY
    attempt = 0
    while True:
        attempt += 1
        try:
            await declare_topology_at(url, topology)
            await rpc.connect()
            log.info("connected to RabbitMQ (prefix %s) after %d attempt(s)", topology.prefix, attempt)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to connect means: try again later
            log.warning("RabbitMQ not reachable (attempt %d): %r; retrying in %.1fs", attempt, exc, delay)
            with contextlib.suppress(Exception):
                await rpc.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY)
