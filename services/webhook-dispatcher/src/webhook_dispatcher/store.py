"""MongoDB side of the dispatcher: subscriptions, deliveries (the retry schedule and the log) and
each user's intake cursor.

`webhooks`: one document per subscription (`_id` = its id), with its secret. `webhook_deliveries`:
one per (subscription, seq), `_id` = `<subscription>:<seq>`, so scheduling an event twice (a
redelivery from the stream) is one delivery; `pending` ones are what is left to do, oldest `seq`
first, each with `nextAttemptAt`. They go `expiresAt` after their event came (TTL).
`webhook_cursors`: per user, the last `seq` scheduled.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from fleet_shared.contracts import utcnow
from fleet_shared.contracts.webhooks import DeliveryStatus

DUPLICATE_KEY = 11000
WEBHOOKS, DELIVERIES, CURSORS = "webhooks", "webhook_deliveries", "webhook_cursors"


@dataclass(frozen=True)
class Subscription:
    id: str
    user_id: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime

    @classmethod
    def of(cls, doc: dict) -> "Subscription":
        return cls(doc["_id"], doc["userId"], doc["url"], doc["events"], doc["secret"], doc["createdAt"])


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    seq: int
    event_id: str
    body: bytes
    attempts: int
    next_attempt_at: datetime
    occurred_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, doc: dict) -> "Delivery":
        return cls(
            doc["subscriptionId"], doc["seq"], doc["eventId"], doc["body"], doc["attempts"], doc["nextAttemptAt"],
            doc["occurredAt"], doc["createdAt"],
        )


class Store:
    def __init__(self, db: AsyncDatabase, log_retention: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.log_retention = log_retention
        self.clock = clock

    @property
    def webhooks(self) -> AsyncCollection:
        return self.db[WEBHOOKS]

    @property
    def deliveries(self) -> AsyncCollection:
        return self.db[DELIVERIES]

    @property
    def cursors(self) -> AsyncCollection:
        return self.db[CURSORS]

    async def ensure_indexes(self) -> None:
        await self.webhooks.create_indexes([IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING)], name="user")])
        await self.deliveries.create_indexes([
            IndexModel([("subscriptionId", ASCENDING), ("status", ASCENDING), ("seq", ASCENDING)], name="to_do"),
            IndexModel([("subscriptionId", ASCENDING), ("seq", DESCENDING)], name="log"),
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="retention"),
        ])

    async def ping(self) -> bool:
        await self.db.client.admin.command("ping")
        return True

    # ---- subscriptions ------------------------------------------------------------------------

    async def add(self, sub: Subscription) -> None:
        await self.webhooks.insert_one({
            "_id": sub.id, "userId": sub.user_id, "url": sub.url, "events": sub.events, "secret": sub.secret,
            "createdAt": sub.created_at,
        })

    async def subscriptions(self, user_id: str | None = None) -> list[Subscription]:
        query = {"userId": user_id} if user_id is not None else {}
        return [Subscription.of(doc) async for doc in self.webhooks.find(query).sort("createdAt", ASCENDING)]

    async def subscription(self, user_id: str, subscription_id: str) -> Subscription | None:
        doc = await self.webhooks.find_one({"_id": subscription_id, "userId": user_id})
        return Subscription.of(doc) if doc else None

    async def remove(self, user_id: str, subscription_id: str) -> bool:
        removed = await self.webhooks.delete_one({"_id": subscription_id, "userId": user_id})
        await self.deliveries.delete_many({"subscriptionId": subscription_id})
        return removed.deleted_count == 1

    # ---- intake -------------------------------------------------------------------------------

    async def cursor(self, user_id: str) -> int | None:
        doc = await self.cursors.find_one({"_id": user_id})
        return doc["seq"] if doc else None

    async def advance(self, cursors: dict[str, int]) -> None:
        """Move each user's cursor up to the `seq` given (never back)."""
        if cursors:
            ops = [UpdateOne({"_id": user}, {"$max": {"seq": seq}}, upsert=True) for user, seq in cursors.items()]
            await self.cursors.bulk_write(ops, ordered=False)

    async def schedule(self, rows: Sequence[tuple[Subscription, int, str, str, bytes, datetime]]) -> int:
        """One pending delivery per (subscription, seq, event id, type, body, occurred at); those
        scheduled before are left as they are. Answers how many are new."""
        if not rows:
            return 0
        now = self.clock()
        docs = [
            {
                "_id": f"{sub.id}:{seq}", "subscriptionId": sub.id, "userId": sub.user_id, "seq": seq, "eventId": event_id,
                "type": event_type, "body": body, "status": "pending", "attempts": 0, "nextAttemptAt": now,
                "occurredAt": occurred_at, "createdAt": now, "expiresAt": occurred_at + self.log_retention,
            }
            for sub, seq, event_id, event_type, body, occurred_at in rows
        ]
        try:
            result = await self.deliveries.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            return exc.details.get("nInserted", 0)

    # ---- delivering ---------------------------------------------------------------------------

    async def next_pending(self, subscription_id: str) -> Delivery | None:
        """The subscription's oldest undelivered event (deliveries are made in `seq` order)."""
        doc = await self.deliveries.find_one(
            {"subscriptionId": subscription_id, "status": "pending"}, sort=[("seq", ASCENDING)]
        )
        return Delivery.of(doc) if doc else None

    async def record(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        *,
        http_status: int | None,
        error: str | None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        now = self.clock()
        fields: dict[str, Any] = {"status": status, "lastStatus": http_status, "lastError": error, "lastAttemptAt": now}
        if next_attempt_at is not None:
            fields["nextAttemptAt"] = next_attempt_at
        if status == "delivered":
            fields["deliveredAt"] = now
        await self.deliveries.update_one(
            {"_id": f"{delivery.subscription_id}:{delivery.seq}"}, {"$set": fields, "$inc": {"attempts": 1}}
        )

    async def log(self, subscription_id: str, limit: int, before: int | None) -> list[dict]:
        query: dict[str, Any] = {"subscriptionId": subscription_id}
        if before is not None:
            query["seq"] = {"$lt": before}
        found = self.deliveries.find(query, {"body": 0}).sort("seq", DESCENDING).limit(limit)
        return [doc async for doc in found]
