"""`POST /webhooks/waha/{session}`: cap -> verify -> parse -> check -> map -> publish (confirmed) -> 2xx;
else 4xx/503.

Each session signs with its own key, derived from the fleet's (`fleet_shared.waha.session_webhook_key`),
and posts to its own path: the signature is checked before the body is parsed, and a body naming
another session than its path is refused, so one session's key speaks for that session only. A
webhook signed longer ago than WEBHOOK_MAX_AGE is refused (a captured one cannot be replayed).
`POST /webhooks/waha` with the fleet key itself is taken only while WEBHOOK_ACCEPT_FLEET_KEY is on.

The endpoint is a bare ASGI app that the app hands its requests ahead of every middleware
(`WebhookFirstApp`): FastAPI's routing, error, telemetry and body-limit layers and `JSONResponse`
cost more CPU per webhook than the work itself (docs/benchmarks.md, benchmark 1). So it answers
every outcome itself, an unexpected error included, with the bodies FastAPI's route gave
(`fleet_shared.http` error bodies, JSON rendered as `JSONResponse` renders it). The route stays
registered, so every other method still gets FastAPI's 405.
"""

import logging
import re
import time
from typing import Any

import pydantic_core
from fastapi import FastAPI
from starlette.datastructures import Address, Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.connect import PublisherLink
from fleet_shared.http import ApiError, error_body, unexpected_error
from fleet_shared.topology import Topology
from fleet_shared.waha import ALGORITHM_HEADER, SIGNATURE_HEADER, WEBHOOK_PATH, verify_keyed

from . import mapping
from .activity import ActivityReports
from .body import BadContentLength, BodyTooLarge, IncompleteBody, read_capped_body
from .config import Settings
from .lids import LidsSeen
from .metrics import count, count_event
from .publishing import park, publish_event
from .signatures import WebhookKeys
from .waha import InvalidJson, InvalidWebhook, parse_webhook

log = logging.getLogger(__name__)

SESSION_PATH_PREFIX = WEBHOOK_PATH + "/"
# A WAHA session name as it may appear in the path (WAHA allows at most 54 characters).
_SESSION_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,54}$")
RETRY_AFTER_SECONDS = "5"
UNKNOWN_SESSION = "unknown_session"


def _refuse(outcome: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    count(outcome)
    return ApiError(status, code, message, headers)


def _unavailable(exc: BrokerUnavailable) -> ApiError:
    log.warning("answering 503 so WAHA retries: %s", exc)
    return _refuse(
        "unavailable", 503, "broker_unavailable", "the message broker is unavailable; retry later",
        {"Retry-After": RETRY_AFTER_SECONDS},
    )


class WebhookEndpoint:
    """The ASGI app of `POST /webhooks/waha`."""

    def __init__(self, settings: Settings, link: PublisherLink, topology: Topology) -> None:
        self._keys = WebhookKeys(settings.webhook_hmac_key)
        self._accept_fleet_key = settings.webhook_accept_fleet_key
        self._max_age_ms = settings.webhook_max_age.total_seconds() * 1000
        self._max_skew_ms = settings.webhook_max_skew.total_seconds() * 1000
        self._max_bytes = settings.webhook_max_bytes
        self._link = link
        self._topology = topology
        self._activity = ActivityReports(settings.activity_report_interval)
        self._lids = LidsSeen()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = None
        try:
            status, content = await self._receive_waha_webhook(scope, receive)
        except Exception as exc:  # ahead of FastAPI's error middleware, the last resort is here
            error = exc if isinstance(exc, ApiError) else unexpected_error(exc)
            status, content, headers = error.status, error_body(error.code, error.message), error.headers
        await send_json(send, status, content, headers)

    async def _receive_waha_webhook(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        headers = _first_values(scope)
        try:
            raw = await read_capped_body(_header(headers, b"content-length"), receive, self._max_bytes)
        except BodyTooLarge as exc:
            raise _refuse("too_large", 413, "payload_too_large", str(exc)) from exc
        except BadContentLength as exc:
            raise _refuse("invalid", 400, "invalid_content_length", str(exc)) from exc
        except IncompleteBody as exc:
            raise _refuse("invalid", 400, "incomplete_body", str(exc)) from exc

        path_session = self._path_session(scope["path"])
        key = self._keys.fleet if path_session is None else self._keys.session(path_session)
        if not verify_keyed(key, raw, _header(headers, _SIGNATURE), _header(headers, _ALGORITHM)):
            client = scope.get("client")
            log.warning("refused a webhook with a missing or wrong signature from %s", client and Address(*client))
            raise _refuse("invalid_signature", 401, "invalid_signature", "X-Webhook-Hmac is missing or does not sign the body")

        try:
            hook = parse_webhook(raw)
        except InvalidJson as exc:
            raise _refuse("invalid", 400, "invalid_json", str(exc)) from exc
        except InvalidWebhook as exc:
            raise _refuse("invalid", 422, "invalid_webhook", str(exc)) from exc
        if path_session is not None and hook.session != path_session:
            raise _refuse("invalid_signature", 401, "invalid_signature", "the webhook names another session than its key's")
        self._check_age(hook.timestamp)

        if not mapping.is_handled(hook.event):
            log.debug("ignoring WAHA event %s %s of session %s", hook.event, hook.id, hook.session)
            count("ignored")
            return 200, {"status": "ignored"}

        user_id = mapping.user_for(hook)
        if user_id is None:
            try:
                await park(self._link, self._topology, raw, hook, Headers(scope=scope), UNKNOWN_SESSION)
            except BrokerUnavailable as exc:
                raise _unavailable(exc) from exc
            log.warning("parked %s %s of unknown session %r", hook.event, hook.id, hook.session)
            count("parked")
            return 202, {"status": "parked"}

        try:
            env = mapping.translate(hook, user_id)
            events = [env, *filter(None, [mapping.media_to_copy(hook, env)])]
        except InvalidWebhook as exc:
            raise _refuse("invalid", 422, "invalid_webhook", str(exc)) from exc
        except mapping.ContractViolation as exc:
            log.warning("refused %s %s of user %s: %s", hook.event, hook.id, user_id, exc)
            raise _refuse("invalid", 422, "contract_violation", str(exc)) from exc

        try:
            # The report first: should the events then fail, WAHA's retry publishes them, and no
            # report is missing for them.
            if report := self._activity.due(env):
                await publish_event(self._link, self._topology, report)
                self._activity.published(report)
            for env in events:
                await publish_event(self._link, self._topology, env)
            if lid := self._lids.due(events[0]):
                await publish_event(self._link, self._topology, lid)
                self._lids.published(lid)
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from exc
        count("published")
        count_event(env.type)
        log.debug("published %s %s for user %s (WAHA event %s)", env.type, env.id, user_id, hook.id)
        return 200, {"status": "published", "id": env.id, "type": env.type}


    def _path_session(self, path: str) -> str | None:
        """The session a webhook's path names (None: the fleet key's path, if that is accepted)."""
        if path == WEBHOOK_PATH:
            if not self._accept_fleet_key:
                raise _refuse("invalid_signature", 401, "invalid_signature",
                              f"post each session's webhooks to {SESSION_PATH_PREFIX}<session>, signed with its key")
            return None
        session = path.removeprefix(SESSION_PATH_PREFIX)
        if not _SESSION_SEGMENT.fullmatch(session):
            raise _refuse("invalid", 404, "not_found", "not a WAHA session name")
        return session

    def _check_age(self, timestamp_ms: int) -> None:
        age_ms = time.time() * 1000 - timestamp_ms
        if age_ms > self._max_age_ms:
            raise _refuse("stale", 400, "stale_webhook",
                          f"signed {age_ms / 1000:.0f} s ago, longer than WEBHOOK_MAX_AGE allows: a replay")
        if -age_ms > self._max_skew_ms:
            raise _refuse("stale", 400, "stale_webhook",
                          f"signed {-age_ms / 1000:.0f} s in the future, more than WEBHOOK_MAX_SKEW allows")


_SIGNATURE, _ALGORITHM = SIGNATURE_HEADER.encode(), ALGORITHM_HEADER.encode()


def _first_values(scope: Scope) -> dict[bytes, bytes]:
    """Each request header's first value, by its (ASGI: lowercase) name, as Starlette's `Headers.get`
    answers; one dict built in C instead of a scan of every header per name read."""
    return dict(reversed(scope["headers"]))


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


async def send_json(send: Send, status: int, content: Any, headers: dict[str, str] | None = None) -> None:
    """The response `JSONResponse(content, status, headers)` sends, without building one.

    pydantic-core writes the same bytes as `JSONResponse`'s `json.dumps` options (compact, UTF-8)
    for these bodies of strings and integers, in a quarter of the instructions (a test compares).
    """
    body = pydantic_core.to_json(content)
    raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class WebhookFirstApp(FastAPI):
    """FastAPI, except that `POST /webhooks/waha` goes straight to its endpoint once the route is
    installed: ahead of FastAPI's own per-request work (its telemetry check reads the environment on
    every request) and of every middleware. So webhooks get no OpenTelemetry spans from FastAPI
    (nothing configures OpenTelemetry here); `/metrics` counts them (`metrics.py`)."""

    webhook: WebhookEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.webhook is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and (scope["path"] == WEBHOOK_PATH or scope["path"].startswith(SESSION_PATH_PREFIX))
        ):
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def install_webhook_route(app: WebhookFirstApp, settings: Settings, link: PublisherLink, topology: Topology) -> None:
    app.webhook = WebhookEndpoint(settings, link, topology)
    app.router.routes.append(Route(WEBHOOK_PATH, app.webhook, methods=["POST"]))
    app.router.routes.append(Route(SESSION_PATH_PREFIX + "{session}", app.webhook, methods=["POST"]))
