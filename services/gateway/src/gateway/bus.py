"""API calls -> RabbitMQ request/reply: one envelope per call, scoped to the caller's user id."""

import contextlib
import functools
import logging
import time
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fleet_shared.broker import BrokerTimeout, BrokerUnavailable, RpcClient
from fleet_shared.contracts import Contract, Reply, envelope, new_id
from fleet_shared.contracts.admin import ADMIN_QUERY_TYPES
from fleet_shared.contracts.commands import (
    COMMAND_TYPES,
    QUERY_TYPES,
    GetQr,
    GetSession,
    LogoutSession,
    RestartSession,
    SessionView,
    StartSession,
    StopSession,
)
from fleet_shared.http import ApiError
from fleet_shared.ids import session_name_for
from fleet_shared.topology import Topology

from .limits import UserLimits
from .metrics import RPC_DURATION, RPC_REQUESTS
from .status_cache import StatusReadModel

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

# Session commands whose reply gives the session's status: this process's reads show it from then on.
STATUS_COMMANDS = frozenset(c.TYPE for c in (StartSession, StopSession, RestartSession, LogoutSession, GetQr))
# The labelled metric children, looked up once per message type (and outcome) rather than per call.
_rpc_requests = functools.cache(RPC_REQUESTS.labels)
_rpc_duration = functools.cache(RPC_DURATION.labels)


class Bus:
    def __init__(
        self, rpc: RpcClient, topology: Topology, timeout: timedelta, limits: UserLimits, statuses: StatusReadModel
    ) -> None:
        self._rpc = rpc
        self._topology = topology
        self._timeout = timeout
        self._limits = limits
        self.statuses = statuses

    def exchange_for(self, payload: Contract) -> str:
        if payload.TYPE in COMMAND_TYPES:
            return self._topology.commands
        if payload.TYPE in QUERY_TYPES or payload.TYPE in ADMIN_QUERY_TYPES:
            return self._topology.queries
        raise ValueError(f"{payload.TYPE} is neither a command nor a query")

    async def ask(
        self,
        user_id: str,
        payload: Contract,
        *,
        envelope_id: str | None = None,
        routing_key: str | None = None,
        limited: bool = True,
    ) -> Any:
        """Send `payload` for `user_id` and return the reply's `data`, or raise `ApiError` (429
        when the user is over their limits: `limits.UserLimits`).

        `routing_key`: a fleet-wide question (`routing.admin_key`) instead of `user.<user_id>.<type>`;
        `user_id` is then who asks, and the envelope names no session. `limited=False`: a question
        the gateway asks on its own (not the user's), which their limits must not refuse."""
        with self._limits.admit(user_id) if limited else contextlib.nullcontext():
            try:
                reply = await self._request(user_id, payload, envelope_id, routing_key)
            finally:
                if payload.TYPE in COMMAND_TYPES:
                    self.statuses.changed(user_id)  # a command moves the user's lastActivity, maybe the status
            if reply.ok and payload.TYPE in STATUS_COMMANDS and isinstance(reply.data, dict):
                status = reply.data.get("status")
                if isinstance(status, str):
                    await self.statuses.confirmed(user_id, status)
        if reply.ok:
            return reply.data
        error = reply.error
        if error is None or not 400 <= error.status <= 599:
            log.error("%s for %s: malformed failure reply %r", payload.TYPE, user_id, reply)
            raise ApiError(502, "bad_reply", f"malformed answer to {payload.TYPE}")
        raise ApiError(error.status, error.code, error.message)

    async def _request(self, user_id: str, payload: Contract, envelope_id: str | None, routing_key: str | None) -> Reply:
        env = envelope(
            payload,
            user_id,
            id=envelope_id,
            session=None if routing_key else session_name_for(user_id),
            correlation_id=new_id(),
        )
        started = time.perf_counter()
        outcome = "ok"
        try:
            exchange = self.exchange_for(payload)
            reply = await self._rpc.request(
                exchange, env, self._timeout, routing_key=routing_key, expires=exchange == self._topology.queries
            )
        except BrokerUnavailable as exc:
            outcome = "unavailable"
            log.warning("%s for %s: %s", payload.TYPE, user_id, exc)
            raise ApiError(503, "broker_unavailable", "the message broker is unavailable, retry later", {"Retry-After": "1"}) from exc
        except BrokerTimeout as exc:
            outcome = "timeout"
            log.warning("%s for %s: %s", payload.TYPE, user_id, exc)
            raise ApiError(504, "timeout", f"no answer to {payload.TYPE} in time") from exc
        finally:
            _rpc_requests(payload.TYPE, outcome).inc()
            _rpc_duration(payload.TYPE).observe(time.perf_counter() - started)
        return reply

    async def status(self, user_id: str) -> bytes:
        """The user's `session.get` as JSON, from this process's read model when it is current (`status_cache`)."""
        return await self.statuses.status(user_id, lambda: self.ask_for(SessionView, user_id, GetSession()))

    async def ask_for(self, model: type[ModelT], user_id: str, payload: Contract, **kwargs: Any) -> ModelT:
        """`ask`, with the reply's data validated as `model`."""
        return self._validated(model, await self.ask(user_id, payload, **kwargs), payload.TYPE, user_id)

    @staticmethod
    def _validated(model: type[ModelT], data: Any, type_: str, user_id: str) -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            log.error("%s for %s: reply does not fit %s: %s", type_, user_id, model.__name__, exc)
            raise ApiError(502, "bad_reply", f"malformed answer to {type_}") from exc
