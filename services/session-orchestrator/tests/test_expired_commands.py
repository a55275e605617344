"""Issue 22.1: a command whose requester has given up (older than REQUEST_TIMEOUT less REPLY_MARGIN)
is dropped before it runs: nothing done in WAHA, no reply, nothing dead-lettered. A command nobody
waits for (upkeep) runs whatever its age, and a fresh command of the same user runs."""

from datetime import timedelta

import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.contracts import envelope, utcnow
from fleet_shared.contracts.commands import StartSession
from fleet_shared.ids import session_name_for

pytestmark = pytest.mark.integration


async def counted(orchestrator, type_: str, outcome: str) -> float:
    for line in (await orchestrator.ops.get("/metrics")).text.splitlines():
        if line.startswith("orchestrator_messages_total{") and f'type="{type_}"' in line and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_command_past_its_requesters_deadline_is_dropped_not_run_nor_dead_lettered(orchestrator):
    late = envelope(StartSession(), "lena", session=session_name_for("lena"),
                    occurred_at=utcnow() - orchestrator.settings.request_timeout - timedelta(seconds=1))
    await orchestrator.publish(orchestrator.topology.commands, late, reply_to="amq.rabbitmq.reply-to.gone")

    async def dropped() -> bool:
        return await counted(orchestrator, "session.start", "expired") == 1

    await wait_until(dropped, timeout=10, what="the late command dropped")
    assert await orchestrator.waha.calls(method="POST", path="/api/sessions") == []  # nothing was created in WAHA
    assert await orchestrator.dead_letters() == 0

    # The same command, on time: done.
    reply = await orchestrator.ask(StartSession(), "lena")
    assert reply.ok, reply
    assert (await orchestrator.waha.session("wf_lena"))["name"] == "wf_lena"


async def test_a_command_nobody_waits_for_runs_whatever_its_age(orchestrator):
    old = envelope(StartSession(), "uwe", session=session_name_for("uwe"), occurred_at=utcnow() - timedelta(hours=1))
    await orchestrator.publish(orchestrator.topology.commands, old)

    async def created() -> bool:
        return bool(await orchestrator.waha.calls(method="POST", path="/api/sessions"))

    await wait_until(created, timeout=10, what="the upkeep-like command run")
