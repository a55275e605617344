"""The `sends` collection: the send ledger (`ports.SendLedger`) on MongoDB.

    {userId, key (unique together), fingerprint, commandId, state: "pending" | "done", result,
     messageId, sendingAt, sendingUntil, createdAt, updatedAt}

What the claims mean, and how a pending one is settled: `domain/sending.py`.
"""

from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..domain.sending import Claim, Sending, sending_until

COLLECTION = "sends"


def _sending_fields(message_id: str | None, now: datetime, budget: float) -> dict:
    return {"messageId": message_id, "sendingAt": now, "sendingUntil": sending_until(now, budget)}


class MongoSendLedger:
    def __init__(self, db: AsyncDatabase) -> None:
        self._sends = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._sends.create_index([("userId", ASCENDING), ("key", ASCENDING)], unique=True, name="userId_key_unique")

    async def claim(
        self, user_id: str, key: str, print_: str, command_id: str, now: datetime, *, sending: Sending | None = None
    ) -> Claim:
        """`sending`: a new claim also records what `mark_sending` would (WAHA may be called from now)."""
        try:
            await self._sends.insert_one(
                {
                    "userId": user_id,
                    "key": key,
                    "fingerprint": print_,
                    "commandId": command_id,
                    "state": "pending",
                    "result": None,
                    "messageId": None,
                    "sendingAt": None,
                    **(_sending_fields(sending.message_id, now, sending.budget) if sending else {}),
                    "createdAt": now,
                    "updatedAt": now,
                }
            )
            return Claim("claimed")
        except DuplicateKeyError:
            pass
        doc = await self._sends.find_one({"userId": user_id, "key": key})
        if doc is None:  # released between our insert and this read: claim it again
            return await self.claim(user_id, key, print_, command_id, now, sending=sending)
        if doc.get("fingerprint") != print_:
            return Claim("mismatch")
        if doc.get("state") == "done":
            return Claim("done", doc.get("result"))
        return Claim("pending", message_id=doc.get("messageId"), sending_at=doc.get("sendingAt"),
                     sending_until=doc.get("sendingUntil"), tracked="sendingAt" in doc)

    async def mark_sending(self, user_id: str, key: str, message_id: str | None, now: datetime, budget: float) -> None:
        """Recorded right before WAHA's sendText: the message's id and how long the attempt may run."""
        await self._sends.update_one(
            {"userId": user_id, "key": key},
            {"$set": {**_sending_fields(message_id, now, budget), "updatedAt": now}},
        )

    async def complete(self, user_id: str, key: str, result: dict, now: datetime) -> None:
        await self._sends.update_one(
            {"userId": user_id, "key": key}, {"$set": {"state": "done", "result": result, "updatedAt": now}}
        )

    async def release(self, user_id: str, key: str) -> None:
        await self._sends.delete_one({"userId": user_id, "key": key, "state": "pending"})
