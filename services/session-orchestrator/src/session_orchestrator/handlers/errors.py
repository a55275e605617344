"""The one place where a handler's failure becomes the reply the requester gets.

WAHA unavailable -> 503 `waha_unavailable` (and the registry's lastError; a session being brought up
is then FAILED), the session limit -> 429 `session_limit_reached`, WAHA refusing -> a 4xx/5xx saying
why, the registry unavailable -> 503, anything unexpected -> 500. Reports have no requester: they
raise `Retry` for a transient failure so the broker delivers them again.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, Reply
from fleet_shared.contracts.commands import GetQr, RestartSession, StartSession
from fleet_shared.media import MediaNotFound, MediaStoreError

from ..adapters.ports import (
    FileTooLarge,
    SessionRecords,
    WahaBadResponse,
    WahaError,
    WahaNotFound,
    WahaRejected,
    WahaUnavailable,
)
from ..domain.statuses import FAILED
from .admission import SessionLimitReached
from .statuses import StatusConflict, StatusRecorder

log = logging.getLogger(__name__)

# Commands that bring a session up: WAHA still unreachable after the retries makes the session FAILED.
BRING_UP = frozenset({StartSession.TYPE, GetQr.TYPE, RestartSession.TYPE})


class Retry(Exception):
    """A transient failure while handling a report: let the broker deliver it again."""


def unsupported(message_type: str, kind: str) -> Reply:
    return Reply.failure("unsupported", f"{message_type} is not a {kind} of the session orchestrator", 400)


def failure_reply(exc: Exception) -> Reply:
    """What the requester is told about `exc`."""
    if isinstance(exc, SessionLimitReached):
        return Reply.failure(
            "session_limit_reached", f"at most {exc.limit} WhatsApp sessions may run at once; try again later", 429
        )
    if isinstance(exc, WahaUnavailable):
        return Reply.failure("waha_unavailable", "WhatsApp (WAHA) is unavailable, retry later", 503)
    if isinstance(exc, WahaNotFound):
        return Reply.failure("session_not_found", exc.message, 404)
    if isinstance(exc, WahaRejected):
        if exc.status in (401, 403):
            return Reply.failure("waha_auth_failed", "WAHA refused the orchestrator's API key", 502)
        return Reply.failure("waha_rejected", exc.message, 422)
    if isinstance(exc, WahaBadResponse):
        return Reply.failure("waha_bad_response", exc.message, 502)
    if isinstance(exc, FileTooLarge):
        return Reply.failure("media_too_large", exc.message, 413)
    if isinstance(exc, PyMongoError):
        return Reply.failure("database_unavailable", "the session registry is unavailable, retry later", 503)
    if isinstance(exc, MediaStoreError):
        return Reply.failure("media_store_unavailable", "the media store is unavailable, retry later", 503)
    if isinstance(exc, MediaNotFound):
        return Reply.failure("media_not_found", "the file to send is not in the media store", 404)
    if isinstance(exc, BrokerUnavailable):
        return Reply.failure("broker_unavailable", "the message broker is unavailable, retry later", 503)
    return Reply.failure("internal_error", "internal error", 500)


def log_failure(env: Envelope, exc: Exception) -> None:
    what = f"{env.type} for {env.user_id}"
    if isinstance(exc, SessionLimitReached):
        log.warning("%s refused: %s", what, exc)
    elif isinstance(exc, WahaBadResponse):
        log.error("%s: %s (body %r)", what, exc.message, exc.body)
    elif isinstance(exc, WahaError):
        log.warning("%s: %s", what, exc.message)
    elif isinstance(exc, PyMongoError):
        log.error("%s: database error %r", what, exc)
    else:
        log.error("%s failed", what, exc_info=exc)


@dataclass
class CommandFailures:
    """A failed command: logged, remembered where the user will see it, answered."""

    records: SessionRecords
    recorder: StatusRecorder
    clock: Callable[[], datetime]

    async def reply(self, env: Envelope, exc: Exception) -> Reply:
        log_failure(env, exc)
        if isinstance(exc, WahaError) and not isinstance(exc, WahaNotFound):
            await self._note_error(env.user_id, exc.message)
        if isinstance(exc, WahaUnavailable) and env.type in BRING_UP:
            await self._observe_failure(env, exc.message)
        return failure_reply(exc)

    async def _note_error(self, user_id: str, message: str) -> None:
        try:
            await self.records.record_error(user_id, message, self.clock())
        except PyMongoError as exc:
            log.warning("could not record the error of %s: %r", user_id, exc)

    async def _observe_failure(self, env: Envelope, message: str) -> None:
        """WAHA stayed unreachable while bringing the session up: it is FAILED, and says why."""
        try:
            await self.recorder.observe(env.user_id, FAILED, error=message, correlation_id=env.correlation_id or env.id)
        except (PyMongoError, StatusConflict) as exc:
            log.warning("could not record %s as FAILED: %r", env.user_id, exc)
