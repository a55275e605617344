"""The `history_imports` collection (`ports.HistoryImports`): one document per user, the progress
and durable cursor of their history import.

    {userId (unique), state: running|done|failed, chats, messages, error, startedAt, finishedAt,
     offset (of the next chats-overview page), done: [chatId] (chats imported; a resumed import
     skips them), owner (the process running it), leaseUntil}

The process running an import holds its lease and renews it; one whose lease ran out (the
process died) is claimed by the next replica that looks (`stale`), which continues from `offset`
and `done`. Every progress write is conditional on still holding the lease.
"""

from datetime import UTC, datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "history_imports"
RUNNING, DONE, FAILED = "running", "done", "failed"
VIEW_PROJECTION = {"_id": 0, "state": 1, "chats": 1, "messages": 1, "error": 1, "startedAt": 1, "finishedAt": 1}


class MongoHistoryImports:
    def __init__(self, db: AsyncDatabase) -> None:
        self._imports = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._imports.create_index([("userId", ASCENDING)], unique=True, name="userId_unique")
        await self._imports.create_index([("state", ASCENDING), ("leaseUntil", ASCENDING)], name="state_lease")

    async def begin(self, user_id: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Start the user's import from the beginning, held by `owner`; False when one is running
        already under a live lease (it goes on)."""
        fresh = {
            "state": RUNNING, "chats": 0, "messages": 0, "error": None, "startedAt": now, "finishedAt": None,
            "offset": 0, "done": [], "owner": owner, "leaseUntil": lease_until,
        }
        doc = await self._imports.find_one({"userId": user_id}, {"_id": 0, "state": 1, "leaseUntil": 1})
        if doc is None:
            try:
                await self._imports.insert_one({"userId": user_id, **fresh})
            except DuplicateKeyError:
                return False  # another process began it at the same moment
            return True
        if doc.get("state") == RUNNING and _aware(doc.get("leaseUntil")) >= _aware(now):
            return False
        # Compare-and-set on what was read: of two at once, one wins.
        found = {"userId": user_id, "state": doc.get("state"), "leaseUntil": doc.get("leaseUntil")}
        result = await self._imports.update_one(found, {"$set": fresh})
        return result.modified_count == 1

    async def claim(self, user_id: str, owner: str, now: datetime, lease_until: datetime) -> dict | None:
        """Take over a running import whose lease ran out; answers its cursor (None: not ours to take)."""
        return await self._imports.find_one_and_update(
            {"userId": user_id, "state": RUNNING, "leaseUntil": {"$lt": now}},
            {"$set": {"owner": owner, "leaseUntil": lease_until}},
            projection={"_id": 0},
            return_document=ReturnDocument.AFTER,
        )

    async def renew(self, user_id: str, owner: str, lease_until: datetime) -> bool:
        result = await self._imports.update_one(
            {"userId": user_id, "owner": owner, "state": RUNNING}, {"$set": {"leaseUntil": lease_until}}
        )
        return result.matched_count == 1

    async def chat_done(self, user_id: str, owner: str, chat_id: str, messages: int) -> bool:
        result = await self._imports.update_one(
            {"userId": user_id, "owner": owner, "state": RUNNING, "done": {"$ne": chat_id}},
            {"$push": {"done": chat_id}, "$inc": {"chats": 1, "messages": messages}},
        )
        if result.matched_count == 1:
            return True
        # Done already (a resumed import met it again), or the lease is gone.
        return await self._holds(user_id, owner)

    async def _holds(self, user_id: str, owner: str) -> bool:
        return await self._imports.count_documents({"userId": user_id, "owner": owner, "state": RUNNING}, limit=1) == 1

    async def page_done(self, user_id: str, owner: str, offset: int) -> bool:
        result = await self._imports.update_one(
            {"userId": user_id, "owner": owner, "state": RUNNING}, {"$set": {"offset": offset}}
        )
        return result.matched_count == 1

    async def finish(self, user_id: str, owner: str, now: datetime, error: str | None) -> None:
        await self._imports.update_one(
            {"userId": user_id, "owner": owner, "state": RUNNING},
            {"$set": {"state": FAILED if error else DONE, "error": error, "finishedAt": now, "owner": None, "done": []}},
        )

    async def stale(self, now: datetime, limit: int) -> list[str]:
        cursor = self._imports.find({"state": RUNNING, "leaseUntil": {"$lt": now}}, {"_id": 0, "userId": 1}).limit(limit)
        return [doc["userId"] async for doc in cursor]

    async def view(self, user_id: str) -> dict | None:
        return await self._imports.find_one({"userId": user_id}, VIEW_PROJECTION)


def _aware(value: object) -> float:
    """A stored time as a timestamp (MongoDB hands back naive UTC datetimes)."""
    if not isinstance(value, datetime):
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
