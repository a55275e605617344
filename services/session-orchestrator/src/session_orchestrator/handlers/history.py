"""The history import: the chats and newest messages WhatsApp synced at pairing, into waha-fleet.

It starts when a session becomes WORKING after a new pairing (SCAN_QR_CODE -> WORKING, `Reports`)
and on the user's `session.import_history`, and runs in the background of the replica that started
it (nobody waits; progress is in the status, `historyImport`). One import:

1. the people WAHA knows under both ids (`/lids`, paged): `contact.lids_mapped`, and the map that
   gives each imported @lid sender's phone number;
2. the groups (`/groups`): `chat.updated` with each one's subject and participants;
3. the chats (`/chats/overview`, HISTORY_CHATS_PAGE at a time, newest first): `chat.updated` with
   the name and picture, then the newest HISTORY_MESSAGES_PER_CHAT messages of each chat
   (HISTORY_CONCURRENCY chats at a time), each published as `message.imported` with a deterministic
   id; the persister stores a message once however often and by whichever way it comes.

Bounded: one page of chats and HISTORY_CONCURRENCY chats' messages in memory, HISTORY_IMPORT_TIMEOUT
in all. Paced: WAHA's 429s are waited out (`Retry-After`, backoff: the client's history policy).
Resumable: after each chat, the durable cursor (`ports.HistoryImports`) says it is done; after each
page, where the next one starts. The replica holds a lease it renews; when it dies, another (or it,
restarted) takes the import over once the lease ran out and goes on from the cursor.
"""

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.errors import PyMongoError

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Contract, Envelope, Reply, deterministic_id, envelope
from fleet_shared.contracts.commands import HistoryImportView
from fleet_shared.contracts.events import ContactLidsMapped
from fleet_shared.ids import session_name_for

from ..adapters.ports import EventPublisher, HistoryImports, SessionRecords, Waha, WahaError, WahaNotFound
from ..domain.history import chat_id_of, chat_info, group_info, imported_message, lid_pairs, occurred_at
from ..domain.records import iso
from ..domain.statuses import WORKING
from ..metrics import HISTORY_IMPORTS, HISTORY_MESSAGES

log = logging.getLogger(__name__)

LIDS_PAGE = 100
STALE_BATCH = 20


@dataclass(frozen=True)
class HistoryPolicy:
    messages_per_chat: int = 50
    chats_page: int = 50
    concurrency: int = 4
    lease: timedelta = timedelta(seconds=30)
    resume_interval: timedelta = timedelta(seconds=5)
    timeout: timedelta = timedelta(minutes=30)


class LeaseLost(Exception):
    """Another replica took the import over (this one was too slow to renew): it stops here."""


def view_of_import(doc: dict | None) -> HistoryImportView:
    if not doc:
        return HistoryImportView()
    return HistoryImportView(
        state=doc.get("state") or "idle", chats=doc.get("chats") or 0, messages=doc.get("messages") or 0,
        error=doc.get("error"), started_at=iso(doc.get("startedAt")), finished_at=iso(doc.get("finishedAt")),
    )


class HistoryImporter:
    def __init__(
        self, imports: HistoryImports, records: SessionRecords, waha: Waha, events: EventPublisher,
        policy: HistoryPolicy, clock: Callable[[], datetime],
    ) -> None:
        self.imports = imports
        self.records = records
        self.waha = waha
        self.events = events
        self.policy = policy
        self.clock = clock
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._running: dict[str, asyncio.Task] = {}
        self._resumer: asyncio.Task | None = None

    # ---- starting ---------------------------------------------------------------------------

    async def paired(self, user_id: str) -> None:
        """The session is WORKING after a new pairing: import what WhatsApp synced."""
        await self.start(user_id)

    async def command(self, env: Envelope, deadline: float) -> Reply:
        """`session.import_history`: only a WORKING session has a history to read."""
        status = (await self.records.view(env.user_id)).status
        if status != WORKING:
            return Reply.failure("session_not_working", f"the session is {status}, not WORKING", 409)
        await self.start(env.user_id)
        return Reply.success(view_of_import(await self.imports.view(env.user_id)))

    async def start(self, user_id: str) -> None:
        """Begin the user's import here, unless one is running already (anywhere)."""
        if await self.imports.begin(user_id, self.owner, self.clock(), self._lease_end()):
            HISTORY_IMPORTS.labels("started").inc()
            self._spawn(user_id, 0, set())

    def _spawn(self, user_id: str, offset: int, done: set[str]) -> None:
        task = asyncio.create_task(self._run(user_id, offset, done), name=f"history-import-{user_id}")
        self._running[user_id] = task
        task.add_done_callback(lambda _: self._running.pop(user_id, None))

    def _lease_end(self) -> datetime:
        return self.clock() + self.policy.lease

    # ---- resuming (a replica died mid-import) -----------------------------------------------

    def start_resuming(self) -> None:
        self._resumer = asyncio.create_task(self._resume_loop(), name="history-resume")

    async def stop(self) -> None:
        """Shutdown: stop, and let the lease run out so the next replica takes over soon."""
        tasks = [t for t in (self._resumer, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resume_loop(self) -> None:
        while True:
            try:
                await self.resume_stale()
            except PyMongoError as exc:
                log.warning("could not look for history imports to resume: %r", exc)
            await asyncio.sleep(self.policy.resume_interval.total_seconds())

    async def resume_stale(self) -> int:
        """Take over the imports whose lease ran out; answers how many this replica took."""
        taken = 0
        for user_id in await self.imports.stale(self.clock(), STALE_BATCH):
            if user_id in self._running:
                continue
            doc = await self.imports.claim(user_id, self.owner, self.clock(), self._lease_end())
            if doc is not None:
                HISTORY_IMPORTS.labels("resumed").inc()
                log.info("resuming the history import of %s at chat %d", user_id, doc.get("offset") or 0)
                self._spawn(user_id, int(doc.get("offset") or 0), set(doc.get("done") or []))
                taken += 1
        return taken

    # ---- one import -------------------------------------------------------------------------

    async def _run(self, user_id: str, offset: int, done: set[str]) -> None:
        heartbeat = asyncio.create_task(self._keep_lease(user_id))
        error: str | None = None
        try:
            async with asyncio.timeout(self.policy.timeout.total_seconds()):
                await self._import(user_id, offset, done)
        except LeaseLost:
            log.warning("history import of %s was taken over by another replica", user_id)
            return
        except TimeoutError:
            error = f"the import took longer than {self.policy.timeout} (HISTORY_IMPORT_TIMEOUT)"
        except WahaError as exc:
            error = f"WAHA: {exc.message}"[:500]
        except (BrokerUnavailable, PyMongoError) as exc:
            # Ours, and passing: the lease runs out and the import is resumed from its cursor.
            log.warning("history import of %s paused (resumed when its lease runs out): %r", user_id, exc)
            return
        finally:
            heartbeat.cancel()
        try:
            await self.imports.finish(user_id, self.owner, self.clock(), error)
        except PyMongoError as exc:
            log.warning("could not record the end of %s's history import: %r", user_id, exc)
            return
        HISTORY_IMPORTS.labels("failed" if error else "done").inc()
        log.info("history import of %s %s", user_id, f"failed: {error}" if error else "done")

    async def _keep_lease(self, user_id: str) -> None:
        while True:
            await asyncio.sleep(self.policy.lease.total_seconds() / 3)
            try:
                if not await self.imports.renew(user_id, self.owner, self._lease_end()):
                    return
            except PyMongoError as exc:
                log.warning("could not renew the history import lease of %s: %r", user_id, exc)

    async def _import(self, user_id: str, offset: int, done: set[str]) -> None:
        session = session_name_for(user_id)
        lids = await self._lids(user_id, session)
        if offset == 0 and not done:
            for group in await self.waha.groups(session):
                info = group_info(group, self._now_ms())
                if info is not None:
                    await self._publish(user_id, info, deterministic_id(user_id, "group", info.chat_id, str(info.updated_at_ms)))
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def chats(page: list[dict]) -> None:
            async def one(chat: dict) -> None:
                async with gate:
                    await self._chat(user_id, session, chat, lids)
                done.add(chat["id"])

            await asyncio.gather(*(one(chat) for chat in page if chat_id_of(chat) and chat["id"] not in done))

        while True:
            page = await self.waha.chats_overview(session, self.policy.chats_page, offset)
            await chats(page)
            offset += len(page)
            if not await self.imports.page_done(user_id, self.owner, offset):
                raise LeaseLost()
            if len(page) < self.policy.chats_page:
                break
        # A chat that got a message while the pages were read moved to the first page, perhaps past
        # the page it was on: the first page once more, for the chats not done yet.
        await chats(await self.waha.chats_overview(session, self.policy.chats_page, 0))

    async def _lids(self, user_id: str, session: str) -> dict[str, str]:
        """lid -> phone id of everyone WAHA knows under both (published for the persister too)."""
        known: dict[str, str] = {}
        offset = 0
        while True:
            items = await self.waha.lids(session, LIDS_PAGE, offset)
            pairs = lid_pairs(items)
            if pairs:
                known.update((p.lid, p.phone) for p in pairs)
                mapped = ContactLidsMapped(items=pairs)
                await self._publish(user_id, mapped, deterministic_id(user_id, "lids", *(p.lid for p in pairs)))
            offset += len(items)
            if len(items) < LIDS_PAGE:
                return known

    async def _chat(self, user_id: str, session: str, chat: dict, lids: dict[str, str]) -> None:
        chat_id = chat_id_of(chat)
        assert chat_id is not None
        info = chat_info(chat, self._now_ms())
        if info is not None and (info.name or info.picture):
            await self._publish(user_id, info, deterministic_id(user_id, "chat-info", chat_id, info.name or "", info.picture or ""))
        try:
            raw = await self.waha.chat_messages(session, chat_id, self.policy.messages_per_chat)
        except WahaNotFound:
            raw = []  # gone since the overview
        messages = [m for m in (imported_message(item, chat_id, lids) for item in raw) if m is not None]
        # All of the chat's messages at once: each publish waits for its confirm (a quorum queue's
        # commit), so one after the other the chat would cost HISTORY_MESSAGES_PER_CHAT of them.
        await asyncio.gather(*(
            self.events.publish(envelope(
                message, user_id, id=deterministic_id(user_id, "imported", message.id), session=session,
                occurred_at=occurred_at(message),
            ))
            for message in messages
        ))
        count = len(messages)
        HISTORY_MESSAGES.inc(count)
        if not await self.imports.chat_done(user_id, self.owner, chat_id, count):
            raise LeaseLost()

    async def _publish(self, user_id: str, payload: Contract, id: str) -> None:
        await self.events.publish(envelope(payload, user_id, id=id, session=session_name_for(user_id)))

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)
