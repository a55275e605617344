"""`POST /webhooks/waha`: cap -> verify -> parse -> map -> publish (confirmed) -> 2xx; else 4xx/503."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.connect import BrokerLink
from fleet_shared.http import ApiError
from fleet_shared.topology import Topology

from . import mapping, signature
from .body import BadContentLength, BodyTooLarge, IncompleteBody, read_capped_body
from .config import Settings
from .metrics import EVENTS, count
from .publishing import park, publish_event
from .waha import InvalidJson, InvalidWebhook, parse_webhook

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-webhook-hmac"
ALGORITHM_HEADER = "x-webhook-hmac-algorithm"
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


def make_router(settings: Settings, link: BrokerLink, topology: Topology) -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/waha", status_code=200)
    async def receive_waha_webhook(request: Request) -> JSONResponse:
        try:
            raw = await read_capped_body(request, settings.webhook_max_bytes)
        except BodyTooLarge as exc:
            raise _refuse("too_large", 413, "payload_too_large", str(exc)) from exc
        except BadContentLength as exc:
            raise _refuse("invalid", 400, "invalid_content_length", str(exc)) from exc
        except IncompleteBody as exc:
            raise _refuse("invalid", 400, "incomplete_body", str(exc)) from exc

        if not signature.verify(
            settings.webhook_hmac_key, raw, request.headers.get(SIGNATURE_HEADER), request.headers.get(ALGORITHM_HEADER)
        ):
            log.warning("refused a webhook with a missing or wrong signature from %s", request.client)
            raise _refuse("invalid_signature", 401, "invalid_signature", "X-Webhook-Hmac is missing or does not sign the body")

        try:
            hook = parse_webhook(raw)
        except InvalidJson as exc:
            raise _refuse("invalid", 400, "invalid_json", str(exc)) from exc
        except InvalidWebhook as exc:
            raise _refuse("invalid", 422, "invalid_webhook", str(exc)) from exc

        if not mapping.is_handled(hook.event):
            log.debug("ignoring WAHA event %s %s of session %s", hook.event, hook.id, hook.session)
            count("ignored")
            return JSONResponse({"status": "ignored"})

        user_id = mapping.user_for(hook)
        if user_id is None:
            try:
                await park(link, topology, raw, hook, request.headers, UNKNOWN_SESSION)
            except BrokerUnavailable as exc:
                raise _unavailable(exc) from exc
            log.warning("parked %s %s of unknown session %r", hook.event, hook.id, hook.session)
            count("parked")
            return JSONResponse({"status": "parked"}, status_code=202)

        try:
            env = mapping.translate(hook, user_id)
        except InvalidWebhook as exc:
            raise _refuse("invalid", 422, "invalid_webhook", str(exc)) from exc
        except mapping.ContractViolation as exc:
            log.warning("refused %s %s of user %s: %s", hook.event, hook.id, user_id, exc)
            raise _refuse("invalid", 422, "contract_violation", str(exc)) from exc

        try:
            await publish_event(link, topology, env)
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from exc
        count("published")
        EVENTS.labels(env.type).inc()
        log.debug("published %s %s for user %s (WAHA event %s)", env.type, env.id, user_id, hook.id)
        return JSONResponse({"status": "published", "id": env.id, "type": env.type})

    return router
