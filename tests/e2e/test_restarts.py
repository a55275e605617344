"""Issue 3's end-to-end proof: sessions survive restarts of the whole system, as real processes.

The system here keeps its state on disk like `make run` does (SecantusDB's files, the emulator's
state file with the linked sessions), so stopping every process and starting them again is what an
operator does to the real stack.
"""

import httpx
import pytest

from fleet_devtools.localdev import wait_until
from fleet_shared.ids import session_name_for

from ..conftest import auth, launched, stack_config, token_for
from ..helpers import all_ready, connect, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = {"Authorization": f"Bearer {token_for('ops', admin=True)}"}


@pytest.fixture(scope="module")
def stack(rabbitmq_url, tmp_path_factory):
    state = tmp_path_factory.mktemp("restarts")
    config = stack_config(rabbitmq_url, state / "logs", tag="rst", mongo_storage=str(state / "mongodb"))
    config.emulator_args = ["--state-file", str(state / "waha-emulator-sessions.json")]
    with launched(config, rabbitmq_url) as system:
        yield system


async def _ready(stack) -> None:
    await wait_until(lambda: all_ready(stack), 30, what="every service ready")


async def _status(gateway, user: str) -> dict:
    r = await gateway.get("/api/v1/waha/status", headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


async def _working(gateway, user: str) -> None:
    async def working() -> bool:
        return (await _status(gateway, user))["status"] == "WORKING"

    await wait_until(working, 20, what=f"{user} WORKING")


async def _waha_creates(waha) -> list[dict]:
    r = await waha.get("/_emulator/calls", params={"method": "POST", "path": "/api/sessions"})
    return r.json()


async def _webhooks_delivered(waha) -> None:
    """WAHA (the emulator) has no webhook left to deliver. Those it sent about restarting its
    sessions while ingest was still down come on its retries, and may turn a WORKING the registry
    kept from before into STARTING for a moment (each is newer than anything WAHA said before the
    restart; WORKING follows). Once none is in flight, the reports are in RabbitMQ."""

    async def none_in_flight() -> bool:
        return (await waha.get("/_emulator/stats")).json()["webhooks"]["inFlight"] == 0

    await wait_until(none_in_flight, 30, what="the emulator's webhooks delivered")


async def test_a_connected_user_finds_the_session_working_after_every_service_restarted(stack, gateway, waha):
    """The owner's test: user A connects, every service restarts, A's next call finds the session
    WORKING without a QR."""
    user = unique_user("owner")
    await connect(gateway, waha, user, phone="15550004242")

    stack.stop()  # every process: the four services, the WAHA emulator, MongoDB
    stack.start()
    await _ready(stack)

    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=30) as gw, httpx.AsyncClient(
        base_url=stack.waha_url, timeout=30
    ) as wa:
        r = await gw.get("/api/v1/waha/qr", headers=auth(user))
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "WORKING", "qr": None}
        await _webhooks_delivered(wa)
        await _working(gw, user)
        status = await _status(gw, user)
        assert status["phoneNumber"] == "15550004242"
        assert await _waha_creates(wa) == []  # the same WAHA session, never created again, never scanned

        r = await gw.post("/api/v1/waha/messages", headers=auth(user), json={"chatId": "4915100000001@c.us", "text": "back"})
        assert r.status_code == 201, r.text

        # The operator sees the same thing: the record, the list and the count, read together.
        async def operator_sees_working() -> bool:
            r = await gw.get(f"/api/v1/admin/sessions/{user}", headers=ADMIN)
            assert r.status_code == 200, r.text
            record = r.json()
            listed = (await gw.get("/api/v1/admin/sessions", headers=ADMIN)).json()
            mine = next(s for s in listed if s["userId"] == user)
            count = (await gw.get("/api/v1/admin/sessions/count", headers=ADMIN)).json()
            return (record["status"] == "WORKING" and record["desired"] == "running" and mine["status"] == "WORKING"
                    and count["byStatus"].get("WORKING", 0) >= 1 and count["running"] >= 1)

        await wait_until(operator_sees_working, 20, what=f"the operator sees {user} WORKING")
        assert (await gw.get("/api/v1/admin/sessions/count", headers=auth(user))).status_code == 403


async def test_a_working_session_waha_did_not_restart_is_started_again_by_the_orchestrator(stack, gateway, waha):
    user = unique_user("lost")
    await connect(gateway, waha, user, phone="15550004343")
    name = session_name_for(user)

    # WAHA comes back without restarting its sessions (WAHA_WORKER_RESTART_SESSIONS=False): the
    # session is STOPPED, still linked, and nobody told the registry. Then the orchestrator restarts.
    stack.env["WAHA_WORKER_RESTART_SESSIONS"] = "False"
    try:
        stack.restart("waha-emulator")
    finally:
        del stack.env["WAHA_WORKER_RESTART_SESSIONS"]
    api_key = {"X-Api-Key": stack.env["WAHA_API_KEY"]}
    async with httpx.AsyncClient(base_url=stack.waha_url, headers=api_key, timeout=30) as wa:
        assert (await wa.get(f"/api/sessions/{name}")).json()["status"] == "STOPPED"
        stack.restart("session-orchestrator")

        # The orchestrator's start-up reconciliation starts it again; no QR, nobody asked.
        async def waha_working() -> bool:
            return (await wa.get(f"/api/sessions/{name}")).json()["status"] == "WORKING"

        await wait_until(waha_working, 20, what=f"{name} WORKING again in WAHA")
        starts = (await wa.get("/_emulator/calls", params={"method": "POST", "path": f"/api/sessions/{name}/start"})).json()
        assert len(starts) == 1
        assert await _waha_creates(wa) == []
    await _working(gateway, user)
    r = await gateway.get("/api/v1/waha/qr", headers=auth(user))
    assert r.json() == {"status": "WORKING", "qr": None}
