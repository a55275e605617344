"""`/api/v1/webhooks`: the caller's outbound webhooks (docs/api.md, "Webhooks"); and
`/api/v1/admin/users/{userId}/webhooks`: the same for an operator acting for one user.

Each call is one round trip to the webhook-dispatcher (`user.<id>.webhook.*`), which owns them; the
user is the token's (or the path's, for an admin), never the body's.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from fleet_shared.contracts.webhooks import (
    MAX_DELIVERY_PAGE,
    CreatedWebhook,
    CreateWebhook,
    DeleteWebhook,
    DeliveryPage,
    ListDeliveries,
    ListWebhooks,
    WebhookList,
)
from fleet_shared.ids import USER_ID_RE

from .auth import CurrentUser, admin_principal
from .bus import Bus
from .schemas import error_responses

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=error_responses(401, 422, 503, 504))
admin_router = APIRouter(
    prefix="/api/v1/admin/users/{userId}/webhooks",
    tags=["admin"],
    dependencies=[Depends(admin_principal)],
    responses=error_responses(401, 403, 422, 503, 504),
)

WebhookId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the id `POST` answered")]
UserIdPath = Annotated[str, Path(pattern=USER_ID_RE.pattern, description="the user acted for")]
Before = Annotated[int | None, Query(ge=1, description="a `seq`: deliveries of older events only")]
Limit = Annotated[int, Query(ge=1, le=MAX_DELIVERY_PAGE)]

CREATE_DESCRIPTION = """
Every event of the user's stream that `events` takes is POSTed to `url`, in `seq` order, signed
with `secret` (answered **once**, here): header `Webhook-Signature: t=<unix seconds>,v1=<hex>`,
HMAC-SHA512 over `"<t>.<raw body>"`; `Webhook-Id` (the event's id: dedupe by it) and `Webhook-Seq`.
Any 2xx is a delivery; anything else is retried with exponential backoff for hours
(WEBHOOK_RETRY_FOR). A URL on a private, loopback or link-local address is refused (400).
"""


def _bus(request: Request) -> Bus:
    return request.app.state.bus


async def _create(request: Request, user_id: str, body: CreateWebhook) -> Any:
    return await _bus(request).ask_for(CreatedWebhook, user_id, body)


async def _list(request: Request, user_id: str) -> Any:
    return await _bus(request).ask_for(WebhookList, user_id, ListWebhooks())


async def _delete(request: Request, user_id: str, webhook_id: str) -> Response:
    await _bus(request).ask(user_id, DeleteWebhook(webhook_id=webhook_id))
    return Response(status_code=204)


async def _deliveries(request: Request, user_id: str, webhook_id: str, limit: int, before: int | None) -> Any:
    query = ListDeliveries(webhook_id=webhook_id, limit=limit, before=before)
    return await _bus(request).ask_for(DeliveryPage, user_id, query)


@router.post(
    "", status_code=201, response_model=CreatedWebhook, summary="Register a webhook", description=CREATE_DESCRIPTION,
    responses=error_responses(400, 409),
)
async def create_webhook(request: Request, user: CurrentUser, body: CreateWebhook) -> Any:
    return await _create(request, user.user_id, body)


@router.get("", response_model=WebhookList, summary="The caller's webhooks (without their secrets)")
async def list_webhooks(request: Request, user: CurrentUser) -> Any:
    return await _list(request, user.user_id)


@router.delete(
    "/{webhookId}", status_code=204, summary="Delete a webhook (its pending deliveries go too)",
    responses=error_responses(404),
)
async def delete_webhook(request: Request, user: CurrentUser, webhookId: WebhookId) -> Response:  # noqa: N803
    return await _delete(request, user.user_id, webhookId)


@router.get(
    "/{webhookId}/deliveries", response_model=DeliveryPage, summary="A webhook's delivery log, newest first",
    responses=error_responses(404),
)
async def webhook_deliveries(
    request: Request, user: CurrentUser, webhookId: WebhookId, limit: Limit = 50, before: Before = None  # noqa: N803
) -> Any:
    return await _deliveries(request, user.user_id, webhookId, limit, before)


@admin_router.post(
    "", status_code=201, response_model=CreatedWebhook, summary="Register a webhook for a user",
    description=CREATE_DESCRIPTION, responses=error_responses(400, 409),
)
async def admin_create_webhook(request: Request, userId: UserIdPath, body: CreateWebhook) -> Any:  # noqa: N803
    return await _create(request, userId, body)


@admin_router.get("", response_model=WebhookList, summary="A user's webhooks")
async def admin_list_webhooks(request: Request, userId: UserIdPath) -> Any:  # noqa: N803
    return await _list(request, userId)


@admin_router.delete(
    "/{webhookId}", status_code=204, summary="Delete a user's webhook", responses=error_responses(404)
)
async def admin_delete_webhook(request: Request, userId: UserIdPath, webhookId: WebhookId) -> Response:  # noqa: N803
    return await _delete(request, userId, webhookId)


@admin_router.get(
    "/{webhookId}/deliveries", response_model=DeliveryPage, summary="A user's webhook's delivery log",
    responses=error_responses(404),
)
async def admin_webhook_deliveries(
    request: Request, userId: UserIdPath, webhookId: WebhookId, limit: Limit = 50, before: Before = None  # noqa: N803
) -> Any:
    return await _deliveries(request, userId, webhookId, limit, before)
