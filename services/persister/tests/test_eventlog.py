"""The per-user event stream on SecantusDB: `seq` given once, per user, without holes, in commit order."""

import asyncio
from datetime import timedelta

from fleet_shared.contracts import envelope
from fleet_shared.contracts.events import SessionQrUpdated, SessionStatusChanged
from persister.eventlog import EventLog

ALICE, BOB = "alice", "bob"


async def make_log(db, **kw) -> EventLog:
    log = EventLog(db, timedelta(days=7), **kw)
    await log.ensure_indexes()
    return log


def status(user: str, value: str = "WORKING"):
    return envelope(SessionStatusChanged(status=value), user)


async def test_each_user_counts_from_one_and_a_redelivery_keeps_its_seq(mongo_db, events):
    log = await make_log(mongo_db)
    a = [events.received(ALICE), status(ALICE), events.sent(ALICE)]
    b = [events.received(BOB), envelope(SessionQrUpdated(value="2@x"), BOB)]
    stored = await log.append([a[0], b[0], a[1], b[1], a[2]])
    assert [(s.user_id, s.seq) for s in stored] == [(ALICE, 1), (BOB, 1), (ALICE, 2), (BOB, 2), (ALICE, 3)]
    # The same envelopes again (a redelivery, a batch written twice) and a copy inside one batch.
    again = await log.append([a[2], a[0], a[2], events.received(ALICE)])
    assert [s.seq for s in again] == [3, 1, 3, 4]
    assert await mongo_db.events.count_documents({"userId": ALICE}) == 4
    assert again[0].wire()["seq"] == 3 and again[0].wire()["id"] == a[2].id


async def test_replicas_writing_one_user_at_once_number_every_event_once_without_holes(mongo_db, events):
    """Three persisters (each its own EventLog, as three processes) store 150 events of one user at once."""
    logs = [await make_log(mongo_db) for _ in range(3)]
    batches = [[events.received(ALICE) for _ in range(10)] for _ in range(15)]
    # Every batch is written by two replicas at once, as a redelivery racing the first delivery.
    results = await asyncio.gather(
        *(logs[i % 3].append(batch) for i, batch in enumerate(batches)),
        *(logs[(i + 1) % 3].append(batch) for i, batch in enumerate(batches)),
    )
    by_id: dict[str, set[int]] = {}
    for stored in results:
        for s in stored:
            by_id.setdefault(s.id, set()).add(s.seq)
    assert all(len(seqs) == 1 for seqs in by_id.values())  # one seq per event, whoever wrote it
    assert sorted(seq for seqs in by_id.values() for seq in seqs) == list(range(1, 151))
    for batch in batches:  # each user's events keep their order within a batch
        seqs = [next(iter(by_id[env.id])) for env in batch]
        assert seqs == sorted(seqs)


async def test_numbering_goes_on_after_every_event_expired(mongo_db, events):
    log = await make_log(mongo_db)
    await log.append([events.received(ALICE) for _ in range(3)])
    await mongo_db.events.delete_many({"userId": ALICE})  # what the TTL index does after EVENT_RETENTION
    [later] = await log.append([events.received(ALICE)])
    assert later.seq == 4


async def test_pages_after_a_seq_are_the_users_own_oldest_first_and_byte_capped(mongo_db, events):
    log = await make_log(mongo_db)
    await log.append([events.received(ALICE, body=f"a{i}") for i in range(5)] + [events.received(BOB)])
    page = await log.page(ALICE, 0, 3, 1024 * 1024)
    assert [(e["seq"], e["data"]["body"], e["userId"]) for e in page] == [(1, "a0", ALICE), (2, "a1", ALICE), (3, "a2", ALICE)]
    assert [e["seq"] for e in await log.page(ALICE, 3, 100, 1024 * 1024)] == [4, 5]
    assert await log.page(ALICE, 5, 100, 1024 * 1024) == []
    assert [e["seq"] for e in await log.page(BOB, 0, 100, 1024 * 1024)] == [1]
    assert await log.page("carol", 0, 100, 1024 * 1024) == []
    assert [e["seq"] for e in await log.page(ALICE, 0, 100, 1)] == [1]  # at least one, then the cap


async def test_holes_left_by_expiry_are_skipped(mongo_db, events):
    log = await make_log(mongo_db)
    await log.append([events.received(ALICE) for _ in range(6)])
    await mongo_db.events.delete_many({"userId": ALICE, "seq": {"$in": [1, 2]}})  # expired
    assert [e["seq"] for e in await log.page(ALICE, 0, 100, 1024 * 1024)] == [3, 4, 5, 6]


class RacedLog(EventLog):
    """Between its first and second read of a page, `landing` is committed: inserts the first read overtook."""

    def __init__(self, db, landing: list[dict]) -> None:
        super().__init__(db)
        self.landing = landing
        self.reads = 0

    async def _read(self, user_id, after, limit, max_bytes):
        items = await super()._read(user_id, after, limit, max_bytes)
        self.reads += 1
        if self.reads == 1 and self.landing:
            await self.events.insert_many(self.landing)
        return items


async def test_a_page_never_passes_an_event_still_being_committed(mongo_db, events):
    log = await make_log(mongo_db)
    await log.append([events.received(ALICE) for _ in range(9)])
    held = {seq: await mongo_db.events.find_one_and_delete({"seq": seq}) for seq in (5, 7, 8, 9)}
    # The first read sees 1-4 and 6; then 5, 7 and 9 are committed, 8 is still being written.
    raced = RacedLog(mongo_db, [held[5], held[7], held[9]])
    page = await raced.page(ALICE, 0, 100, 1024 * 1024)
    assert raced.reads == 2
    # The second read is trusted up to what the first saw (6), and past it only up to a hole.
    assert [e["seq"] for e in page] == [1, 2, 3, 4, 5, 6, 7]
    # Without a hole, one read.
    await mongo_db.events.insert_one(held[8])
    plain = RacedLog(mongo_db, [])
    assert [e["seq"] for e in await plain.page(ALICE, 7, 100, 1024 * 1024)] == [8, 9] and plain.reads == 1


async def test_events_numbered_a_moment_ago_keep_their_seq_without_a_command(counted, events):
    db, log = counted
    stream = await make_log(db)
    first = await stream.append([events.received(ALICE), status(BOB)])
    log.sent.clear()
    again = await stream.append(first)
    assert [s.seq for s in again] == [s.seq for s in first] and log.sent == []


async def test_a_batch_stored_by_another_process_is_found_in_one_query(counted, mongo_db, events):
    """A redelivery of a batch of three users to a replica that did not write it: the counters
    read, the insert refused at its first event, one query for what is stored; no counter written."""
    db, log = counted
    batch = [events.received(ALICE), status(BOB), events.received("carol"), events.received(ALICE)]
    first = await (await make_log(mongo_db)).append(batch)
    stream = await make_log(db)
    log.sent.clear()
    again = await stream.append(batch)
    assert [s.seq for s in again] == [s.seq for s in first] == [1, 1, 1, 2]
    assert log.sent == [("find", "event_counters"), ("insert", "events"), ("find", "events")]
