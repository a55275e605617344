"""Operators' reads of the registry (`fleet_shared.contracts.admin`). Never a user's activity."""

from fleet_shared.contracts import Envelope, Reply
from fleet_shared.contracts.admin import (
    ADMIN_QUERY_TYPES,
    AdminListSessions,
    AdminSessionCount,
    AdminSessionItem,
    AdminSessionRecord,
    StatusEntry,
)
from fleet_shared.ids import session_name_for

from .domain import RUNNING, SOURCE_WAHA, STATUSES, STOPPED
from .registry import SessionRegistry, iso, view_of


def record_of(doc: dict) -> AdminSessionRecord:
    user_id = doc["userId"]
    history = [
        StatusEntry(status=entry["status"], at=iso(entry.get("at")) or "", source=entry.get("source") or SOURCE_WAHA)
        for entry in doc.get("statusHistory") or []
        if entry.get("status") in STATUSES
    ]
    return AdminSessionRecord(
        # The fields a user's own status shows, read the same way; then what only operators see.
        **view_of(user_id, doc).model_dump(),
        desired=doc.get("desired"),
        idle_stopped_at=iso(doc.get("idleStoppedAt")),
        created_at=iso(doc.get("createdAt")),
        status_history=history,
    )


def item_of(doc: dict) -> dict:
    user_id = doc["userId"]
    return AdminSessionItem(
        user_id=user_id,
        session=doc.get("session") or session_name_for(user_id),
        status=doc.get("status") or STOPPED,
        last_activity=iso(doc.get("lastActivity")),
    ).wire()


class AdminQueries:
    TYPES = frozenset(ADMIN_QUERY_TYPES)

    def __init__(self, registry: SessionRegistry, max_sessions: int | None) -> None:
        self._registry = registry
        self._max_sessions = max_sessions

    async def answer(self, env: Envelope) -> Reply:
        if env.type == "session.admin_get":
            doc = await self._registry.get(env.user_id)
            if doc is None:
                return Reply.failure("not_found", f"no session record for user {env.user_id!r}", 404)
            return Reply.success(record_of(doc))
        if env.type == "sessions.list":
            query: AdminListSessions = env.data
            if query.status is not None:
                statuses: list[str] | None = [query.status]
            else:
                statuses = None if query.all else sorted(RUNNING)
            return Reply.success([item_of(doc) for doc in await self._registry.list(statuses, query.limit)])
        counts = await self._registry.count_by_status()
        return Reply.success(
            AdminSessionCount(
                count=sum(counts.values()),
                by_status=counts,
                running=sum(counts.get(status, 0) for status in RUNNING),
                max_sessions=self._max_sessions,
            )
        )
