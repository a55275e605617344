"""Answers to `user.<id>.webhook.*`: a user's subscriptions and their delivery logs. The user is
always the envelope's (the gateway puts the token's, or for an admin the named user's), never
anything in `data`: another user's subscription is `webhook_not_found`.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from aio_pika.exceptions import AMQPError
from pymongo.errors import PyMongoError

from fleet_shared.contracts import Envelope, Reply, utcnow
from fleet_shared.contracts.webhooks import (
    WEBHOOK_TYPES,
    CreatedWebhook,
    CreateWebhook,
    DeleteWebhook,
    DeliveryPage,
    ListDeliveries,
    WebhookList,
)
from fleet_shared.inbound import BadDelivery, read_delivery
from fleet_shared.outbound import RefusedUrl, check_url

from .binder import Binder
from .delivery import Dispatcher
from .intake import EventsUnavailable, Intake
from .signing import new_secret
from .store import Store, Subscription

log = logging.getLogger(__name__)

NOT_FOUND = Reply.failure("webhook_not_found", "no such webhook", 404)


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _view(sub: Subscription) -> dict:
    return {"id": sub.id, "url": sub.url, "events": sub.events, "createdAt": _iso(sub.created_at)}


def _delivery(doc: dict) -> dict:
    return {
        "seq": doc["seq"], "eventId": doc["eventId"], "type": doc["type"], "status": doc["status"],
        "attempts": doc["attempts"], "lastStatus": doc.get("lastStatus"), "lastError": doc.get("lastError"),
        "nextAttemptAt": _iso(doc.get("nextAttemptAt")) if doc["status"] == "pending" else None,
        "deliveredAt": _iso(doc.get("deliveredAt")), "createdAt": _iso(doc["createdAt"]),
    }


class Requests:
    def __init__(
        self, store: Store, dispatcher: Dispatcher, binder: Binder, intake: Intake, *, allow_private: bool, max_per_user: int
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.binder = binder
        self.intake = intake
        self.allow_private = allow_private
        self.max_per_user = max_per_user

    async def answer(self, body: bytes, routing_key: str | None) -> Reply:
        """Any delivery -> a Reply; never raises."""
        try:
            env = read_delivery(body, routing_key, types=WEBHOOK_TYPES)
        except BadDelivery as exc:
            return Reply.failure("invalid_request", str(exc), 400)
        try:
            return await self.run(env)
        except PyMongoError as exc:
            log.warning("%s for %s failed: %r", env.type, env.user_id, exc)
            return Reply.failure("storage_unavailable", "the webhook store is unavailable", 503)
        except (AMQPError, ConnectionError) as exc:  # binding the user's stream
            log.warning("%s for %s failed: %r", env.type, env.user_id, exc)
            return Reply.failure("broker_unavailable", "the message broker is unavailable, retry later", 503)
        except EventsUnavailable as exc:  # reading where the user's stream is
            log.warning("%s for %s failed: %r", env.type, env.user_id, exc)
            return Reply.failure("storage_unavailable", "the event store is unavailable, retry later", 503)
        except Exception:
            log.exception("%s for %s failed", env.type, env.user_id)
            return Reply.failure("internal_error", "internal error", 500)

    async def run(self, env: Envelope) -> Reply:
        q, user = env.data, env.user_id
        if isinstance(q, CreateWebhook):
            return await self._create(user, q)
        if isinstance(q, DeleteWebhook):
            if not await self.store.remove(user, q.webhook_id):
                return NOT_FOUND
            await self.dispatcher.forget(q.webhook_id)
            if not await self.store.subscriptions(user):
                await self.binder.unbind(user)
            return Reply.success({"id": q.webhook_id, "deleted": True})
        if isinstance(q, ListDeliveries):
            if await self.store.subscription(user, q.webhook_id) is None:
                return NOT_FOUND
            docs = await self.store.log(q.webhook_id, q.limit, q.before)
            more = docs[-1]["seq"] if len(docs) == q.limit else None
            return Reply.success(DeliveryPage.model_validate({"items": [_delivery(d) for d in docs], "nextBefore": more}))
        subs = await self.store.subscriptions(user)
        return Reply.success(WebhookList.model_validate({"items": [_view(s) for s in subs]}))

    async def _create(self, user: str, q: CreateWebhook) -> Reply:
        try:
            await check_url(q.url, allow_private=self.allow_private)
        except RefusedUrl as exc:
            return Reply.failure("invalid_url", str(exc), 400)
        if len(await self.store.subscriptions(user)) >= self.max_per_user:
            return Reply.failure("too_many_webhooks", f"at most {self.max_per_user} webhooks per user", 409)
        sub = Subscription(uuid.uuid4().hex, user, q.url, q.events, new_secret(), utcnow())
        # Bound first, then the cursor placed: every event stored after this answer reaches the new subscription.
        await self.binder.bind(user)
        await self.intake.start_at(user)
        await self.store.add(sub)
        self.dispatcher.watch(sub)
        return Reply.success(CreatedWebhook.model_validate({**_view(sub), "secret": sub.secret}))

