"""The `sessions` collection: the session registry (`ports.SessionRegistry`) on MongoDB, one
document per user (`domain/records.py` says what it holds).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fleet_shared.contracts.commands import SessionView
from fleet_shared.ids import session_name_for
from fleet_shared.recent import RecentTimes

from ..domain.records import HISTORY_LENGTH, change_fields, state_of, view_of
from ..domain.statuses import DESIRED_STOPPED, RUNNING, STATUSES, STOPPED, ReportDecision, SessionState

COLLECTION = "sessions"
# At most this many users' last written activity are remembered (`note_activity`), ~200 bytes each.
ACTIVITY_MEMORY = 50_000
# What `view_of` shows: a status query reads nothing more (not the history).
VIEW_PROJECTION = {"_id": 0, "session": 1, "status": 1, "phoneNumber": 1, "lastError": 1, "lastActivity": 1, "updatedAt": 1}
# What a send reads of the record (`touch_send`).
SEND_PROJECTION = {"_id": 0, "status": 1, "phoneNumber": 1, "lastError": 1}


class MongoSessionRegistry:
    """`activity_precision`: how far `lastActivity` may lag behind the user's newest message (see
    `note_activity`); zero writes every message's activity."""

    def __init__(self, db: AsyncDatabase, activity_precision: timedelta = timedelta(0)) -> None:
        self._sessions = db[COLLECTION]
        self.activity_precision = activity_precision
        # userId -> a lastActivity this process knows the record holds at least (it wrote it).
        self._activity_written = RecentTimes(ACTIVITY_MEMORY)

    async def ensure_indexes(self) -> None:
        await self._sessions.create_index([("userId", ASCENDING)], unique=True, name="userId_unique")
        await self._sessions.create_index([("status", ASCENDING)], name="status")
        await self._sessions.create_index([("lastActivity", ASCENDING)], name="lastActivity")
        # The admissions still waiting for WAHA's first report (`count_running`).
        await self._sessions.create_index([("admittedAt", ASCENDING)], name="admittedAt")

    async def get(self, user_id: str) -> dict | None:
        return await self._sessions.find_one({"userId": user_id}, {"_id": 0})

    async def view(self, user_id: str) -> SessionView:
        """The user's status (`view_of`), reading only the fields it shows (one indexed lookup)."""
        return view_of(user_id, await self._sessions.find_one({"userId": user_id}, VIEW_PROJECTION))

    async def state(self, user_id: str) -> SessionState:
        return state_of(await self.get(user_id))

    async def _upsert(
        self, user_id: str, now: datetime, set_: dict, unset: tuple[str, ...] = (), on_insert: dict | None = None
    ) -> dict:
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
                **(on_insert or {}),
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
        assert doc is not None  # an upsert that returns the document after it always has one
        return doc

    async def touch(self, user_id: str, now: datetime, *, desired: str | None = None) -> dict:
        """A command: the user is active (reading status is not activity). `desired`: what the
        command asks for (`domain.DESIRED_*`). Answers the record as it is now."""
        doc = await self._upsert(user_id, now, {"lastActivity": now, **({"desired": desired} if desired else {})})
        # `$set`, not `$max`: the record now holds exactly `now`, whatever this process knew before.
        self._activity_now(user_id, now, exact=True)
        return doc

    async def touch_send(self, user_id: str, now: datetime) -> dict:
        """`touch` for a send, coalesced as `note_activity` is: when this process wrote the user's
        `lastActivity` less than `activity_precision` ago, the record is only read (a send changes
        nothing else in it). Answers at least the status, phone number and last error; {} for no record."""
        known = self._activity_written.get(user_id)
        if known is not None and now <= known + self.activity_precision:
            return await self._sessions.find_one({"userId": user_id}, SEND_PROJECTION) or {}
        return await self.touch(user_id, now)

    async def record_error(self, user_id: str, message: str, now: datetime) -> None:
        await self._upsert(user_id, now, {"lastError": message[:500]})

    async def clear_error(self, user_id: str, now: datetime) -> None:
        await self._sessions.update_one(
            {"userId": user_id, "lastError": {"$ne": None}}, {"$set": {"lastError": None, "updatedAt": now}}
        )

    async def forget_phone(self, user_id: str, now: datetime) -> None:
        """After a logout the WhatsApp account is no longer linked."""
        await self._upsert(user_id, now, {"phoneNumber": None})

    async def ensure_record(self, user_id: str, now: datetime) -> dict:
        """A record for a session found running in WAHA; its idle clock starts now. Not activity."""
        return await self._upsert(user_id, now, {}, on_insert={"lastActivity": now})

    async def set_desired(self, user_id: str, desired: str, now: datetime, *, idle: bool = False) -> None:
        """What the user last asked for (`domain.DESIRED_*`); `idle`: the idle clean-up asked."""
        await self._upsert(user_id, now, {"desired": desired, **({"idleStoppedAt": now} if idle else {})})

    async def note_activity(self, user_id: str, at: datetime) -> bool:
        """A message to or from the user: activity, never moved backwards (a late event is older).
        Activity creates no record. Answers whether it wrote.

        Coalesced: when this process knows the record's `lastActivity` is already at most
        `activity_precision` older than `at` (it wrote that value itself: an earlier message or a
        command of the user), nothing is written. So a chatting user costs one write per
        `activity_precision` instead of one per message, and `lastActivity` lags behind the newest
        message by less than `activity_precision` (the idle clean-up may stop a session that much
        early). Never backwards: skipping a write leaves the stored value as it was.
        """
        known = self._activity_written.get(user_id)
        if known is not None and at <= known + self.activity_precision:
            return False
        result = await self._sessions.update_one({"userId": user_id}, {"$max": {"lastActivity": at}})
        if result.matched_count == 1:
            self._activity_now(user_id, at)
        return result.matched_count == 1

    def _activity_now(self, user_id: str, at: datetime, *, exact: bool = False) -> None:
        """The record's lastActivity is `at` or later (this process just wrote it; `exact`: with `$set`)."""
        if self.activity_precision:
            self._activity_written.note(user_id, at, exact=exact)

    async def mark_admitted(self, user_id: str, now: datetime) -> None:
        """The session is about to be started: it holds a slot until WAHA's report arrives."""
        await self._upsert(user_id, now, {"admittedAt": now})

    async def count_running(self, *, exclude: str | list[str], admitted_since: datetime) -> int:
        """Sessions holding a slot under MAX_SESSIONS: running by the registry, or admitted so
        recently that WAHA's report may still be on its way. `exclude`: the user(s) asking."""
        # Two counts, each on an index (a top-level `$or` is a collection scan on some servers), whose
        # sets do not overlap: admitted and not running, then running. In this order a record that
        # WAHA's report moves from the first set to the second in between is counted twice (one
        # slot too many, for an instant), never zero times: the count never comes out too low.
        running = sorted(RUNNING)
        others = {"$ne": exclude} if isinstance(exclude, str) else {"$nin": exclude}
        waiting = await self._sessions.count_documents(
            {"admittedAt": {"$gt": admitted_since}, "status": {"$nin": running}, "userId": others}
        )
        return waiting + await self._sessions.count_documents({"status": {"$in": running}, "userId": others})

    async def holding_slots(self, users: list[str], *, admitted_since: datetime) -> set[str]:
        """Which of `users` hold a slot (as `count_running` counts them)."""
        cursor = self._sessions.find({"userId": {"$in": users}}, {"_id": 0, "userId": 1, "status": 1, "admittedAt": 1})
        held = set()
        async for doc in cursor:
            admitted = doc.get("admittedAt")
            if isinstance(admitted, datetime) and admitted.tzinfo is None:
                admitted = admitted.replace(tzinfo=UTC)
            if doc.get("status") in RUNNING or (isinstance(admitted, datetime) and admitted > admitted_since):
                held.add(doc["userId"])
        return held

    async def idle_users(self, cutoff: datetime, limit: int) -> list[str]:
        """Users whose session is not STOPPED and who have been idle since before `cutoff`, oldest first."""
        # Already told to stop (by the user, or an earlier sweep): nothing to ask again.
        query = {"status": {"$ne": STOPPED}, "desired": {"$ne": DESIRED_STOPPED}, "lastActivity": {"$lt": cutoff}}
        cursor = self._sessions.find(query, {"_id": 0, "userId": 1}).sort("lastActivity", ASCENDING).limit(limit)
        return [doc["userId"] async for doc in cursor]

    async def not_stopped(self) -> dict[str, tuple[str, str | None]]:
        """userId -> (status, desired) of every record that is not STOPPED (for reconciliation)."""
        cursor = self._sessions.find({"status": {"$ne": STOPPED}}, {"_id": 0, "userId": 1, "status": 1, "desired": 1})
        return {doc["userId"]: (doc["status"], doc.get("desired")) async for doc in cursor}

    async def list_records(self, statuses: list[str] | None, limit: int) -> list[dict]:
        """Records ordered by user id; `statuses`: only those (None: every record)."""
        query = {"status": {"$in": statuses}} if statuses is not None else {}
        cursor = self._sessions.find(query, {"_id": 0}).sort("userId", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def apply_report(self, user_id: str, previous: SessionState, decision: ReportDecision, now: datetime) -> bool:
        """Write `decision.state` only if nobody applied another report since `previous` was read."""
        new = decision.state
        set_: dict[str, Any] = {
            "session": session_name_for(user_id),
            "status": new.status,
            "phoneNumber": new.phone_number,
            "lastError": new.last_error,
            "lastReportedAtMs": new.last_reported_at_ms,
            "lastChange": change_fields(decision.change) if decision.change else None,
            "updatedAt": now,
        }
        update: dict[str, Any] = {"$set": set_, "$setOnInsert": {"userId": user_id, "createdAt": now}}
        # A status newer than the admission says whether the session runs: the slot is that status's now.
        update["$unset"] = {"admittedAt": ""}
        if decision.change is not None:
            change = decision.change
            entry = {"status": new.status, "at": now, "reportedAtMs": change.reported_at_ms, "source": change.source}
            update["$push"] = {"statusHistory": {"$each": [entry], "$slice": -HISTORY_LENGTH}}
        try:
            result = await self._sessions.update_one(
                {"userId": user_id, "lastReportedAtMs": previous.last_reported_at_ms, "status": previous.status},
                update,
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the user's document exists with another lastReportedAtMs: we lost the race
        return result.upserted_id is not None or result.modified_count == 1

    async def count_by_status(self) -> dict[str, int]:
        return {status: await self._sessions.count_documents({"status": status}) for status in STATUSES}
