"""Dead-letter queues for operators: how deep they are, what is in them and why, and replaying them.

    python -m fleet_devtools.dlq list                         # every dead-letter queue of BROKER_PREFIX, with its depth
    python -m fleet_devtools.dlq show persister.events        # its messages and why each died (left in place)
    python -m fleet_devtools.dlq replay persister.events      # move them back to the queue they came from
    python -m fleet_devtools.dlq replay persister.events --limit 10

A queue is named in full (`wa.persister.events.dlq`), by its work queue (`wa.persister.events`) or
relative to the prefix (`persister.events`). `make dlq` and `make dlq-replay QUEUE=...` run these.
Settings come from the environment like the services' (`RABBITMQ_URL`, `BROKER_PREFIX`). A broker
that does not answer is reported within BROKER_CHECK_TIMEOUT (5 s), never waited for.

A replay publishes each message, with its body and properties, straight to its work queue (the
default exchange, so no other subscriber sees it twice), waits for the confirm and only then
acks it in the dead-letter queue: a crash mid-replay duplicates at most one message, which the
consumers' idempotency absorbs. The dead-letter headers are dropped and `x-fleet-replays`
counts the replays. It moves at most the messages that were there when it started, so a message
that dies again is not replayed in a loop.
"""

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pamqp.commands import Basic

from fleet_devtools.broker_check import (
    DEFAULT_TIMEOUT,
    BrokerUnreachable,
    configured_timeout,
    connect,
    quiet_client_logs,
)
from fleet_shared.broker import CONFIRM_TIMEOUT
from fleet_shared.deadletter import DEAD_HEADERS, QUEUE_HEADER, REASON_HEADER
from fleet_shared.inbound import REPLAYS_HEADER
from fleet_shared.settings import FleetSettings
from fleet_shared.topology import Topology

DLQ_SUFFIX = ".dlq"
# Headers RabbitMQ adds when it dead-letters or redelivers; a replayed message starts afresh.
TOOL = "dlq-tool"
BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                  "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")


def resolve(topology: Topology, name: str) -> str:
    """The dead-letter queue meant by `name` (full name, work queue, or name relative to the prefix)."""
    known = topology.dead_letter_queues()
    for candidate in (name, f"{name}{DLQ_SUFFIX}", f"{topology.prefix}.{name}", f"{topology.prefix}.{name}{DLQ_SUFFIX}"):
        if candidate in known:
            return candidate
    if name.endswith(DLQ_SUFFIX):  # a subscriber's, or another queue's: trust the operator
        return name
    raise ValueError(f"no dead-letter queue {name!r} under prefix {topology.prefix!r}; `list` shows them")


def source_queue(dlq: str) -> str:
    return dlq.removesuffix(DLQ_SUFFIX)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    routing_key: str | None
    reason: str
    queue: str
    body: bytes

    def summary(self) -> dict:
        try:
            body: object = json.loads(self.body)
        except ValueError:
            body = self.body[:200].decode(errors="replace")
        return {"messageId": self.message_id, "queue": self.queue, "reason": self.reason, "body": body}


def why(message: AbstractIncomingMessage) -> str:
    """The consumer's reason if it gave one, else what RabbitMQ recorded (rejected, delivery_limit, expired)."""
    headers = message.headers or {}
    if reason := headers.get(REASON_HEADER):
        return str(reason)
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        return f"{death.get('reason')!s} by RabbitMQ (from {death.get('queue')!s}, {death.get('count')!s} time(s))"
    return "unknown"


async def depth(channel: AbstractChannel, queue: str, timeout: float = DEFAULT_TIMEOUT) -> int:
    declared = await channel.declare_queue(queue, passive=True, timeout=timeout)
    return declared.declaration_result.message_count or 0


async def depths(url: str, queues: list[str], timeout: float = DEFAULT_TIMEOUT) -> dict[str, int | None]:
    """Messages in each queue (None: the queue does not exist)."""
    out: dict[str, int | None] = {}
    async with await connect(url, name=TOOL, timeout=timeout) as connection:
        for queue in queues:
            channel = await connection.channel()
            try:
                out[queue] = await depth(channel, queue, timeout)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                out[queue] = None
            finally:
                if not channel.is_closed:
                    await channel.close()
    return out


async def peek(url: str, dlq: str, limit: int, timeout: float = DEFAULT_TIMEOUT) -> list[DeadLetter]:
    """Up to `limit` messages of `dlq`, left in the queue (taken, then handed back)."""
    async with await connect(url, name=TOOL, timeout=timeout) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(dlq, passive=True, timeout=timeout)
        taken = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False, timeout=timeout)
            if message is None:
                break
            taken.append(message)
        for message in taken:
            await message.reject(requeue=True)
        return [
            DeadLetter(m.message_id, m.routing_key, why(m), str((m.headers or {}).get(QUEUE_HEADER) or source_queue(dlq)), m.body)
            for m in taken
        ]


def replay_headers(message: AbstractIncomingMessage) -> dict:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in DEAD_HEADERS and k not in BROKER_HEADERS}
    replays = (message.headers or {}).get(REPLAYS_HEADER)
    headers[REPLAYS_HEADER] = (replays if isinstance(replays, int) else 0) + 1  # an int: only `replay` sets it
    return headers


async def replay(url: str, dlq: str, limit: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Move up to `limit` messages (default: all that are there now) from `dlq` back to its work queue."""
    target = source_queue(dlq)
    async with await connect(url, name=TOOL, timeout=timeout) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(dlq, passive=True, timeout=timeout)
        await channel.declare_queue(target, passive=True, timeout=timeout)  # refuse to replay into a queue that is gone
        budget = queue.declaration_result.message_count or 0
        if limit is not None:
            budget = min(budget, limit)
        moved = 0
        while moved < budget:
            message = await queue.get(no_ack=False, fail=False, timeout=timeout)
            if message is None:
                break
            copy = aio_pika.Message(
                message.body,
                headers=replay_headers(message),
                content_type=message.content_type,
                correlation_id=message.correlation_id,
                message_id=message.message_id,
                type=message.type,
                app_id=message.app_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            confirm = await channel.default_exchange.publish(copy, routing_key=target, mandatory=True, timeout=CONFIRM_TIMEOUT)
            if not isinstance(confirm, Basic.Ack):
                await message.nack(requeue=True)
                raise RuntimeError(f"RabbitMQ did not take message {message.message_id} back into {target}")
            await message.ack()
            moved += 1
        return moved


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleet_devtools.dlq", description="Inspect and replay dead-letter queues.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every dead-letter queue of BROKER_PREFIX and its depth")
    show = commands.add_parser("show", help="the messages of a dead-letter queue and why they died (left in place)")
    show.add_argument("queue")
    show.add_argument("--limit", type=int, default=20)
    again = commands.add_parser("replay", help="move a dead-letter queue's messages back to their work queue")
    again.add_argument("queue")
    again.add_argument("--limit", type=int, default=None, help="at most this many (default: all there now)")
    return parser


async def run(argv: list[str], settings: FleetSettings) -> int:
    args = _parser().parse_args(argv)
    topology = Topology(settings.broker_prefix, settings.orchestrator_partitions)
    url, timeout = settings.rabbitmq_url, configured_timeout()
    if args.command == "list":
        for queue, count in (await depths(url, topology.dead_letter_queues(), timeout)).items():
            print(f"{queue}\t{'missing' if count is None else count}")
        return 0
    try:
        dlq = resolve(topology, args.queue)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "show":
        for letter in await peek(url, dlq, args.limit, timeout):
            print(json.dumps(letter.summary(), ensure_ascii=False))
        return 0
    moved = await replay(url, dlq, args.limit, timeout)
    print(f"replayed {moved} message(s) from {dlq} to {source_queue(dlq)}")
    return 0


def main() -> None:
    quiet_client_logs()
    try:
        code = asyncio.run(run(sys.argv[1:], FleetSettings()))
    except BrokerUnreachable as exc:
        print(f"RabbitMQ is not usable: {exc}.", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
