"""The `sends` collection: Idempotency-Key claims, so one key sends one WhatsApp message.

    {userId, key (unique together), fingerprint, state: "pending" | "done", result,
     messageId, sendingAt, sendingUntil, createdAt, updatedAt}

A claim is written before WAHA is called and completed with the result after. Right before the
sendText call the claim records the message id the message will have (WAHA's `new-message-id`)
and until when that attempt may still be in flight (its reply deadline): in the claim's own insert
when the id is known by then (`Sending`, one write), else with `mark_sending`. A repeat of a done key
gets the stored result. A pending claim (the process died, or timed out, between the WAHA call
and the result) is settled by asking WAHA for the message by its id: sent -> completed with it;
not sent and no attempt can still be in flight -> sent now, with the same id; otherwise the
outcome stays unknown and nothing is sent. A send WAHA certainly did not make releases the claim
so the client can try again with the same key.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "sends"
SENDING_MARGIN = 5.0  # seconds


def fingerprint(chat_id: str, text: str, reply_to: str | None) -> str:
    """What the key was first used for: the same key with another message is a client error."""
    return hashlib.sha256("\x1f".join((chat_id, text, reply_to or "")).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "done", "pending", "mismatch"]
    result: dict | None = None
    # Of a pending claim: the id its message was sent with, and until when that attempt could run.
    message_id: str | None = None
    sending_at: datetime | None = None
    sending_until: datetime | None = None
    tracked: bool = True  # False: a claim from before sends were tracked; its outcome cannot be known


@dataclass(frozen=True)
class Sending:
    """Recorded with a new claim: WAHA's sendText may be called from now on, with this id, for at
    most `budget` seconds (as `mark_sending` records it)."""

    message_id: str | None
    budget: float


def _sending_fields(message_id: str | None, now: datetime, budget: float) -> dict:
    until = now + timedelta(seconds=max(0.0, budget) + SENDING_MARGIN)
    return {"messageId": message_id, "sendingAt": now, "sendingUntil": until}


def settle(claim: Claim, found: bool, now: datetime) -> Literal["sent", "send", "unknown"]:
    """What to do with a pending claim, given whether WAHA has its message (`found`).

    `sent`: WAHA sent it, complete the claim with it. `send`: WAHA never got it and no earlier
    attempt can still be in flight, send now (with the claim's id). `unknown`: do not send.
    """
    if not claim.tracked:
        return "unknown"
    if claim.sending_at is None:
        return "send"  # claimed, but WAHA was never called
    if claim.message_id is None:
        return "unknown"  # called without an id we could look the message up by
    if found:
        return "sent"
    until = claim.sending_until
    if until is not None and now > (until if until.tzinfo else until.replace(tzinfo=UTC)):
        return "send"
    return "unknown"


class SendLedger:
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
        """Recorded right before WAHA's sendText: the message's id and how long the attempt may run
        (`budget` seconds, plus a margin for the last HTTP attempt and clock skew between replicas)."""
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
