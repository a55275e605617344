"""Does the RabbitMQ at RABBITMQ_URL answer AMQP, with the consistent-hash exchange? Bounded, and saying why not.

    python -m fleet_devtools.broker_check              # exit 0: usable; 1: not usable; 2: nothing listens; 3: no plugin
    python -m fleet_devtools.broker_check --wait 60    # keep trying for up to 60 s (a broker starting up)

A TCP connect is not enough: a RabbitMQ still booting or stuck (or another program on its port)
accepts connections and never completes the AMQP handshake, and a client without a timeout waits
for ever. Each attempt here is bounded by `--timeout` (BROKER_CHECK_TIMEOUT, default 5 s) and every
failure is one sentence naming the cause and the fix. scripts/ensure-rabbitmq.sh (so `make run`,
`make test`, `make dlq`...), the dlq CLI and the local launcher connect through here.
"""

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from urllib.parse import urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection

DEFAULT_TIMEOUT = 5.0
PARTITION_EXCHANGE_TYPE = "x-consistent-hash"  # the orchestrator's partitions (shared/topology.py)
PLUGIN = "rabbitmq_consistent_hash_exchange"
START_HINT = "start one with `rabbitmq-server -detached` (Debian's rabbitmq-server package), or set RABBITMQ_URL to yours"
EXIT_UNREACHABLE, EXIT_NOTHING_LISTENS, EXIT_PLUGIN_MISSING = 1, 2, 3


class BrokerUnreachable(Exception):
    """No usable AMQP connection; the message says why and what to do."""


class NothingListens(BrokerUnreachable):
    pass


class PluginMissing(BrokerUnreachable):
    pass


EXIT_CODES: dict[type[BrokerUnreachable], int] = {NothingListens: EXIT_NOTHING_LISTENS, PluginMissing: EXIT_PLUGIN_MISSING}


def configured_timeout() -> float:
    return float(os.environ.get("BROKER_CHECK_TIMEOUT") or DEFAULT_TIMEOUT)


def quiet_client_logs() -> None:
    """aio-pika and aiormq log their own view of a failed connect; a CLI says it once, in its own words."""
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}"


async def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT, name: str = "broker-check") -> AbstractConnection:
    """An aio-pika connection, or `BrokerUnreachable` within `timeout` seconds."""
    at = where(url)
    try:
        return await aio_pika.connect(url, timeout=timeout, client_properties={"connection_name": name})
    except TimeoutError:
        raise BrokerUnreachable(
            f"no AMQP handshake at {at} within {timeout:g} s: something accepts TCP connections there but does not "
            f"answer as RabbitMQ (a RabbitMQ still starting or stuck, or another program on that port); "
            f"`rabbitmqctl status` tells which, `rabbitmqctl stop` then `rabbitmq-server -detached` restarts a stuck "
            f"one, or set RABBITMQ_URL to a broker that answers"
        ) from None
    except aiormq.exceptions.ProbableAuthenticationError:
        user = urlsplit(url).username or "guest"
        raise BrokerUnreachable(
            f"RabbitMQ at {at} refused user {user!r}: set RABBITMQ_URL with a user and password it knows"
        ) from None
    except aiormq.exceptions.AMQPConnectionError as exc:
        raise NothingListens(f"nothing answers at {at} ({_reason(exc)}): {START_HINT}") from None
    except aiormq.exceptions.AMQPError:
        vhost = urlsplit(url).path.removeprefix("/") or "/"
        raise BrokerUnreachable(
            f"RabbitMQ at {at} closed the connection during the handshake: check that virtual host {vhost!r} "
            f"exists and the user may use it (RABBITMQ_URL)"
        ) from None


def _reason(exc: BaseException) -> str:
    args = [a for a in exc.args if isinstance(a, str)]
    return args[-1] if args else repr(exc)


async def check(url: str, *, timeout: float = DEFAULT_TIMEOUT, exchange_type: str = PARTITION_EXCHANGE_TYPE) -> None:
    """Connect, then declare and delete a throwaway exchange of `exchange_type` (its plugin is enabled)."""
    connection = await connect(url, timeout=timeout)
    try:
        channel = await connection.channel()
        name = f"fleet.broker-check.{uuid.uuid4().hex[:12]}"
        exchange = await channel.declare_exchange(name, type=exchange_type, auto_delete=True, timeout=timeout)
        await exchange.delete(timeout=timeout)
    except aiormq.exceptions.ConnectionCommandInvalid as exc:
        raise PluginMissing(
            f"RabbitMQ at {where(url)} has no {exchange_type} exchange type ({_reason(exc)}): enable its plugin with "
            f"`rabbitmq-plugins enable {PLUGIN}` on the broker's host"
        ) from None
    except TimeoutError:
        raise BrokerUnreachable(f"RabbitMQ at {where(url)} took the connection but did not answer within {timeout:g} s") from None
    finally:
        if not connection.is_closed:
            await connection.close()


async def wait_usable(url: str, *, wait: float, timeout: float = DEFAULT_TIMEOUT, exchange_type: str = PARTITION_EXCHANGE_TYPE) -> None:
    """`check` again until it passes or `wait` seconds are over (then its last failure is raised).
    At most `wait + timeout` seconds in all."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return await check(url, timeout=timeout, exchange_type=exchange_type)
        except PluginMissing:
            raise  # waiting will not enable it
        except BrokerUnreachable:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet_devtools.broker_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--timeout", type=float, default=configured_timeout(),
                        help="seconds one attempt may take (default %(default)s)")
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
    parser.add_argument("--quiet", action="store_true", help="only the exit code")
    args = parser.parse_args(argv)
    quiet_client_logs()
    try:
        asyncio.run(wait_usable(args.url, wait=args.wait, timeout=args.timeout))
    except BrokerUnreachable as exc:
        if not args.quiet:
            print(f"RabbitMQ is not usable: {exc}.", file=sys.stderr)
        return EXIT_CODES.get(type(exc), EXIT_UNREACHABLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
