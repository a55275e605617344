"""The `sends` collection: Idempotency-Key claims, so one key sends one WhatsApp message.

    {userId, key (unique together), fingerprint, state: "pending" | "done", result, createdAt, updatedAt}

A claim is written before WAHA is called and completed with the result after. A repeat of a done
key gets the stored result; a pending claim means a send whose outcome is unknown (the process
died mid-call), which is never sent a second time; a send WAHA certainly did not make releases
the claim so the client can try again with the same key.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "sends"


def fingerprint(chat_id: str, text: str, reply_to: str | None) -> str:
    """What the key was first used for: the same key with another message is a client error."""
    return hashlib.sha256("\x1f".join((chat_id, text, reply_to or "")).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "done", "pending", "mismatch"]
    result: dict | None = None


class SendLedger:
    def __init__(self, db: AsyncDatabase) -> None:
        self._sends = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._sends.create_index([("userId", ASCENDING), ("key", ASCENDING)], unique=True, name="userId_key_unique")

    async def claim(self, user_id: str, key: str, print_: str, command_id: str, now: datetime) -> Claim:
        try:
            await self._sends.insert_one(
                {
                    "userId": user_id,
                    "key": key,
                    "fingerprint": print_,
                    "commandId": command_id,
                    "state": "pending",
                    "result": None,
                    "createdAt": now,
                    "updatedAt": now,
                }
            )
            return Claim("claimed")
        except DuplicateKeyError:
            pass
        doc = await self._sends.find_one({"userId": user_id, "key": key})
        if doc is None:  # released between our insert and this read: claim it again
            return await self.claim(user_id, key, print_, command_id, now)
        if doc.get("fingerprint") != print_:
            return Claim("mismatch")
        if doc.get("state") == "done":
            return Claim("done", doc.get("result"))
        return Claim("pending")

    async def complete(self, user_id: str, key: str, result: dict, now: datetime) -> None:
        await self._sends.update_one(
            {"userId": user_id, "key": key}, {"$set": {"state": "done", "result": result, "updatedAt": now}}
        )

    async def release(self, user_id: str, key: str) -> None:
        await self._sends.delete_one({"userId": user_id, "key": key, "state": "pending"})
