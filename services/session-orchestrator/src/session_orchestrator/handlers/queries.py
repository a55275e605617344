"""Reads of the registry: the user's own status (`session.get`), and operators' reads
(`fleet_shared.contracts.admin`). Never a user's activity."""

from dataclasses import dataclass

from fleet_shared.contracts import Envelope, Reply
from fleet_shared.contracts.admin import (
    AdminListSessions,
    AdminSessionCount,
    AdminSessionItem,
    AdminSessionRecord,
    StatusEntry,
)
from fleet_shared.ids import session_name_for

from ..adapters.ports import FleetRecords, HistoryImports, SessionRecords
from ..domain.records import iso, view_of
from ..domain.statuses import RUNNING, SOURCE_WAHA, STATUSES, STOPPED
from .history import view_of_import


def record_of(doc: dict) -> AdminSessionRecord:
    user_id = doc["userId"]
    history = [
        StatusEntry(status=entry["status"], at=iso(entry.get("at")) or "", source=entry.get("source") or SOURCE_WAHA)
        for entry in doc.get("statusHistory") or []
        if entry.get("status") in STATUSES
    ]
    return AdminSessionRecord(
        # The fields a user's own status shows, read the same way; then what only operators see.
        **view_of(user_id, doc).model_dump(exclude={"history_import"}),
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


@dataclass
class SessionQueries:
    records: SessionRecords
    fleet: FleetRecords
    max_sessions: int | None
    imports: HistoryImports | None = None

    async def status(self, env: Envelope) -> Reply:
        """The user's own status (`session.get`): one indexed lookup, and one for the history import."""
        view = await self.records.view(env.user_id)
        if self.imports is not None:
            view = view.model_copy(update={"history_import": view_of_import(await self.imports.view(env.user_id))})
        return Reply.success(view)

    async def admin_get(self, env: Envelope) -> Reply:
        doc = await self.records.get(env.user_id)
        if doc is None:
            return Reply.failure("not_found", f"no session record for user {env.user_id!r}", 404)
        return Reply.success(record_of(doc))

    async def admin_list(self, env: Envelope) -> Reply:
        query: AdminListSessions = env.data
        if query.status is not None:
            statuses: list[str] | None = [query.status]
        else:
            statuses = None if query.all else sorted(RUNNING)
        return Reply.success([item_of(doc) for doc in await self.fleet.list_records(statuses, query.limit)])

    async def admin_count(self, env: Envelope) -> Reply:
        counts = await self.fleet.count_by_status()
        return Reply.success(
            AdminSessionCount(
                count=sum(counts.values()),
                by_status=counts,
                running=sum(counts.get(status, 0) for status in RUNNING),
                max_sessions=self.max_sessions,
            )
        )
