"""The `sessions` collection: one document per user, the orchestrator's record of their WAHA session.

    {userId (unique), session, status, phoneNumber, lastError, lastActivity,
     statusHistory: [{status, at, reportedAtMs}] (newest last, at most HISTORY_LENGTH),
     lastReportedAtMs, lastChange, createdAt, updatedAt}

`status` is written only from WAHA's own reports (webhooks), guarded by `lastReportedAtMs` so an
older report never overwrites a newer one; commands record activity, errors and the session name.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fleet_shared.contracts.commands import SessionView
from fleet_shared.ids import session_name_for

from .domain import STATUSES, STOPPED, ReportDecision, SessionState, StatusChange

COLLECTION = "sessions"
HISTORY_LENGTH = 10


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def state_of(doc: dict | None) -> SessionState:
    if not doc:
        return SessionState()
    change = doc.get("lastChange")
    return SessionState(
        status=doc.get("status") or STOPPED,
        phone_number=doc.get("phoneNumber"),
        last_error=doc.get("lastError"),
        last_reported_at_ms=doc.get("lastReportedAtMs"),
        last_change=StatusChange(**_snake(change)) if isinstance(change, dict) else None,
    )


def view_of(user_id: str, doc: dict | None) -> SessionView:
    """The contract's status shape; a user never seen is STOPPED with their session name."""
    doc = doc or {}
    return SessionView(
        user_id=user_id,
        session=doc.get("session") or session_name_for(user_id),
        status=doc.get("status") or STOPPED,
        phone_number=doc.get("phoneNumber"),
        last_error=doc.get("lastError"),
        last_activity=_iso(doc.get("lastActivity")),
        updated_at=_iso(doc.get("updatedAt")),
    )


_CHANGE_FIELDS = {
    "status": "status",
    "previousStatus": "previous_status",
    "phoneNumber": "phone_number",
    "lastError": "last_error",
    "reportedAtMs": "reported_at_ms",
}


def _snake(change: dict) -> dict:
    return {snake: change.get(camel) for camel, snake in _CHANGE_FIELDS.items()}


def _camel(change: StatusChange) -> dict:
    values = asdict(change)
    return {camel: values[snake] for camel, snake in _CHANGE_FIELDS.items()}


class SessionRegistry:
    def __init__(self, db: AsyncDatabase) -> None:
        self._sessions = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._sessions.create_index([("userId", ASCENDING)], unique=True, name="userId_unique")
        await self._sessions.create_index([("status", ASCENDING)], name="status")
        await self._sessions.create_index([("lastActivity", ASCENDING)], name="lastActivity")

    async def get(self, user_id: str) -> dict | None:
        return await self._sessions.find_one({"userId": user_id}, {"_id": 0})

    async def state(self, user_id: str) -> SessionState:
        return state_of(await self.get(user_id))

    async def _upsert(self, user_id: str, now: datetime, set_: dict, unset: tuple[str, ...] = ()) -> dict:
        update: dict[str, Any] = {
            "$set": {"session": session_name_for(user_id), "updatedAt": now, **set_},
            "$setOnInsert": {
                "userId": user_id,
                "status": STOPPED,
                "statusHistory": [],
                "lastReportedAtMs": None,
                "createdAt": now,
                **({} if "phoneNumber" in set_ or "phoneNumber" in unset else {"phoneNumber": None}),
                **({} if "lastError" in set_ or "lastError" in unset else {"lastError": None}),
            },
        }
        if unset:
            update["$unset"] = {name: "" for name in unset}
        try:
            doc = await self._sessions.find_one_and_update(
                {"userId": user_id}, update, upsert=True, return_document=ReturnDocument.AFTER, projection={"_id": 0}
            )
        except DuplicateKeyError:
            # Two first writes for one user raced; the loser's filter now matches: do it again.
            doc = await self._sessions.find_one_and_update(
                {"userId": user_id}, update, upsert=True, return_document=ReturnDocument.AFTER, projection={"_id": 0}
            )
        return doc

    async def touch(self, user_id: str, now: datetime) -> dict:
        """A command or a message: the user is active (reading status is not activity)."""
        return await self._upsert(user_id, now, {"lastActivity": now})

    async def record_error(self, user_id: str, message: str, now: datetime) -> None:
        await self._upsert(user_id, now, {"lastError": message[:500]})

    async def clear_error(self, user_id: str, now: datetime) -> None:
        await self._sessions.update_one(
            {"userId": user_id, "lastError": {"$ne": None}}, {"$set": {"lastError": None, "updatedAt": now}}
        )

    async def forget_phone(self, user_id: str, now: datetime) -> None:
        """After a logout the WhatsApp account is no longer linked."""
        await self._upsert(user_id, now, {"phoneNumber": None})

    async def apply_report(self, user_id: str, previous: SessionState, decision: ReportDecision, now: datetime) -> bool:
        """Write `decision.state` only if nobody applied another report since `previous` was read."""
        new = decision.state
        set_: dict[str, Any] = {
            "session": session_name_for(user_id),
            "status": new.status,
            "phoneNumber": new.phone_number,
            "lastError": new.last_error,
            "lastReportedAtMs": new.last_reported_at_ms,
            "lastChange": _camel(decision.change) if decision.change else None,
            "updatedAt": now,
        }
        update: dict[str, Any] = {"$set": set_, "$setOnInsert": {"userId": user_id, "createdAt": now}}
        if decision.change is not None:
            entry = {"status": new.status, "at": now, "reportedAtMs": new.last_reported_at_ms}
            update["$push"] = {"statusHistory": {"$each": [entry], "$slice": -HISTORY_LENGTH}}
        try:
            result = await self._sessions.update_one(
                {"userId": user_id, "lastReportedAtMs": previous.last_reported_at_ms}, update, upsert=True
            )
        except DuplicateKeyError:
            return False  # the user's document exists with another lastReportedAtMs: we lost the race
        return result.upserted_id is not None or result.modified_count == 1

    async def count_by_status(self) -> dict[str, int]:
        return {status: await self._sessions.count_documents({"status": status}) for status in STATUSES}
