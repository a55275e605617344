"""The service layer: one module per message family, each handler answering a `Reply`.

`Dispatcher` runs the handler of a command or query by its type and turns any failure into the
reply the requester gets (`errors.py`, the one place for that mapping). Reports (`reports.py`) have
nobody waiting and raise `errors.Retry` instead.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet_shared.contracts import Envelope, Reply

from .errors import CommandFailures, failure_reply, log_failure, unsupported

CommandHandler = Callable[[Envelope, float], Awaitable[Reply]]  # (envelope, reply deadline in loop time)
QueryHandler = Callable[[Envelope], Awaitable[Reply]]


@dataclass
class Dispatcher:
    commands: dict[str, CommandHandler]
    queries: dict[str, QueryHandler]
    failures: CommandFailures

    async def command(self, env: Envelope, deadline: float) -> Reply:
        """A command with a reply: never raises."""
        handler = self.commands.get(env.type)
        if handler is None:
            return unsupported(env.type, "command")
        try:
            return await handler(env, deadline)
        except Exception as exc:  # every failure is answered (errors.py), none crashes the consumer
            return await self.failures.reply(env, exc)

    async def query(self, env: Envelope) -> Reply:
        """A query: never raises, never counts as activity."""
        handler = self.queries.get(env.type)
        if handler is None:
            return unsupported(env.type, "query")
        try:
            return await handler(env)
        except Exception as exc:  # as for commands, minus the session's lastError
            log_failure(env, exc)
            return failure_reply(exc)
