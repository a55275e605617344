"""MAX_SESSIONS: the pure decision over a batch, and the session commands that ask for a slot."""

import asyncio

from fleet_shared.contracts.commands import GetQr, RestartSession, StartSession, StopSession
from session_orchestrator.domain.admission import Refused, decide_batch


def test_each_request_is_decided_as_if_alone_counting_those_admitted_before_it():
    assert decide_batch(["a", "b", "c"], holding=1, held=set(), max_sessions=3) == [None, None, Refused(3)]
    # "back" holds a slot already: its own is not counted against it, and it takes no second one.
    assert decide_batch(["back", "n1", "n2"], holding=1, held={"back"}, max_sessions=2) == [None, None, Refused(2)]
    assert decide_batch([], holding=9, held=set(), max_sessions=1) == []


async def test_past_max_sessions_a_new_session_is_refused_and_a_running_one_never(make_harness):
    harness = make_harness(max_sessions=2)
    for user in ("u1", "u2"):
        assert (await harness.command(GetQr(), user)).ok
        await harness.report(user, "STARTING", 1_000)

    for command in (GetQr(), StartSession(), RestartSession()):
        reply = await harness.command(command, "u3")
        assert (reply.error.code, reply.error.status) == ("session_limit_reached", 429), reply
    assert harness.waha.calls_of("session.create") == ["wf_u1", "wf_u2"]
    assert harness.registry.docs["u3"]["lastError"] is None  # refusing is not a session error
    assert (await harness.command(RestartSession(), "u1")).ok

    await harness.command(StopSession(), "u2")
    await harness.report("u2", "STOPPED", 2_000)
    assert (await harness.command(GetQr(), "u3")).ok


async def test_an_admission_holds_its_slot_until_wahas_first_report_or_the_grace(make_harness):
    harness = make_harness(max_sessions=1)
    assert (await harness.command(StartSession(), "u1")).ok  # no report yet

    assert (await harness.command(StartSession(), "u2")).error.code == "session_limit_reached"
    harness.clock.advance(seconds=61)  # the grace is over and no report ever came
    assert (await harness.command(StartSession(), "u2")).ok


async def test_a_burst_of_starts_admits_exactly_up_to_the_limit(make_harness):
    harness = make_harness(max_sessions=3)

    replies = await asyncio.gather(*(harness.command(StartSession(), f"u{n}") for n in range(8)))

    assert sum(r.ok for r in replies) == 3
    assert sum(r.error is not None and r.error.code == "session_limit_reached" for r in replies) == 5
    assert len(harness.waha.sessions) == 3
