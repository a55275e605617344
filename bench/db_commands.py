"""MongoDB commands per send, by collection and command: the whole stack, a few users, N sends.

`python -m bench.db_commands [--sends N] [--concurrency C]`: connects a few users (C if more), turns SecantusDB's profiler on
(every command recorded in `system.profile`), sends N messages through the gateway, waits until the
persister's queue has been empty for a second (the sent messages, their webhooks and acks stored),
and prints the commands recorded meanwhile, per send. Counts only: the profiler's own writes make
the timings meaningless.
"""

import argparse
import asyncio
import collections
import os
import tempfile
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

from fleet_shared.settings import MongoSettings
from fleet_shared.topology import Topology
from local_launcher.throwaway import launched, throwaway_config

from .common import token
from .gateway import SEND_BODY, STACK_ENV, connect_users, drained

USERS = 4
DATABASE = MongoSettings.model_fields["mongodb_database"].default


def _command(entry: dict) -> tuple[str, int]:
    """The command's name and how many documents it writes (1 for a read)."""
    command = entry.get("command", {})
    name = next(iter(command), "?")
    ops = command.get("updates") or command.get("deletes") or command.get("documents") or [None]
    return name, len(ops)


async def count(stack, rabbitmq_url: str, sends: int, concurrency: int, dump: str | None = None) -> None:
    users = [f"dbops-{i}" for i in range(max(USERS, concurrency))]
    await connect_users(stack.url("gateway"), stack.waha_url, users)
    events = Topology(stack.config.env["BROKER_PREFIX"], 1).persister_events
    await drained(rabbitmq_url, events)
    client: AsyncMongoClient = AsyncMongoClient(stack.env["MONGODB_URL"])
    db = client[DATABASE]
    await db.command("profile", 2)
    start = await db["system.profile"].count_documents({})
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gw:

        async def send(i: int) -> None:
            user = users[i % len(users)]
            async with gate:
                r = await gw.post("/api/v1/waha/messages", headers={"Authorization": f"Bearer {token(user)}"},
                                  json=SEND_BODY)
            r.raise_for_status()

        await asyncio.gather(*(send(i) for i in range(sends)))
    await drained(rabbitmq_url, events)
    await db.command("profile", 0)
    entries = await db["system.profile"].find({}).skip(start).to_list()
    await client.close()
    if dump:
        with open(dump, "w") as out:
            for entry in entries:
                out.write(f"{entry.get('ts')} {entry.get('ns')} {entry.get('ok')} {entry.get('errMsg', '')} {entry.get('command')}\n")
    commands: collections.Counter[tuple[str, str]] = collections.Counter()
    writes: collections.Counter[tuple[str, str]] = collections.Counter()
    for entry in entries:
        name, ops = _command(entry)
        commands[(entry.get("ns", "?"), name)] += 1
        writes[(entry.get("ns", "?"), name)] += ops
    print(f"{len(entries)} commands for {sends} sends, {concurrency} at once: {len(entries) / sends:.2f} per send")
    print("  commands per send, documents per send, collection, command")
    for key, n in sorted(commands.items(), key=lambda i: -i[1]):
        print(f"  {n / sends:6.2f} {writes[key] / sends:6.2f}  {key[0]:36s} {key[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=1, help="sends in flight at once (one user each)")
    parser.add_argument("--dump", help="write every command recorded to this file")
    args = parser.parse_args()
    rabbitmq_url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with tempfile.TemporaryDirectory() as logs:
        config = throwaway_config(rabbitmq_url, Path(logs), tag="dbops", env=STACK_ENV)
        with launched(config, rabbitmq_url) as stack:
            asyncio.run(count(stack, rabbitmq_url, args.sends, args.concurrency, args.dump))


if __name__ == "__main__":
    main()
