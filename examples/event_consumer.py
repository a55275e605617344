"""Another service's view of waha-fleet: follow users' events with `fleet_shared.subscribe`.

    uv run python examples/event_consumer.py --user alice                 # alice's events, as they happen
    uv run python examples/event_consumer.py --type message.received      # every user's incoming messages
    uv run python examples/event_consumer.py --queue crm --type message.received --type message.sent
                                                                          # a durable queue `<p>.sub.crm`

It reads RABBITMQ_URL and BROKER_PREFIX like the services (defaults: the local broker, `wa`), prints
one line per event and runs until Ctrl-C (or until `--count` events arrived).
"""

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from fleet_shared.contracts import Envelope
from fleet_shared.contracts.events import (
    EVENT_TYPES,
    PUBLIC_EVENT_TYPES,
    Message,
    MessageAck,
    SessionQrUpdated,
    SessionStatusChanged,
)
from fleet_shared.subscribe import SubscriptionLost, subscribe
from fleet_shared.topology import Topology

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def describe(env: Envelope) -> str:
    """One line per event; `env.data` is the typed model of `env.type`."""
    data = env.data
    if isinstance(data, Message):
        arrow = "->" if data.from_me else "<-"
        what = f"{arrow} {data.chat_id}: {data.body!r}"
    elif isinstance(data, MessageAck):
        what = f"{data.id} is now {data.ack_name or data.ack}"
    elif isinstance(data, SessionStatusChanged):
        what = f"session {data.previous_status or '?'} -> {data.status}"
    elif isinstance(data, SessionQrUpdated):
        what = f"new QR ({len(data.value)} characters)"
    else:
        what = data.model_dump_json(by_alias=True)
    return f"{env.occurred_at:%H:%M:%S} {env.user_id} {env.type} {what}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", help="one user's events (default: every user's)")
    parser.add_argument(
        "--type", dest="types", action="append", choices=sorted(EVENT_TYPES),
        help=f"an event type, repeatable (default: {', '.join(PUBLIC_EVENT_TYPES)})",
    )
    parser.add_argument("--queue", help="a durable queue <prefix>.sub.<QUEUE> (default: a temporary one)")
    parser.add_argument("--count", type=int, help="stop after this many events")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    topology = Topology(os.environ.get("BROKER_PREFIX", "wa"))
    models = [EVENT_TYPES[t] for t in args.types] if args.types else list(PUBLIC_EVENT_TYPES.values())
    done = asyncio.Event()
    seen = 0

    async def on_event(env: Envelope) -> None:
        nonlocal seen
        print(describe(env), flush=True)
        seen += 1
        if args.count is not None and seen >= args.count:
            done.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    url = os.environ.get("RABBITMQ_URL", DEFAULT_URL)
    async with subscribe(url, topology, on_event, events=models, user_id=args.user, queue=args.queue) as sub:
        print(f"listening on {sub.queue_name} for {', '.join(sub.binding_keys)}", file=sys.stderr, flush=True)
        ended = asyncio.create_task(sub.wait())
        stop = asyncio.create_task(done.wait())
        await asyncio.wait({ended, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if ended.done():
            ended.result()  # SubscriptionLost: the broker went away
        ended.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ended
    return 0


def main() -> int:
    try:
        return asyncio.run(run(parse_args()))
    except SubscriptionLost as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
