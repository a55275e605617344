"""Issue 22: no secret in any log. A browser's socket with its token in the URL (`?token=`, which the
contract allows), one with a ticket, a refused bearer token: none of them, and none of the stack's
secrets, is written to any service's log, while the lines that mention those requests are."""

import pytest
from websockets.asyncio.client import connect as ws_connect

from fleet_devtools.localdev import wait_until

from ..conftest import SECRETS, auth, token_for
from ..helpers import unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


SERVICES = ("gateway", "webhook-ingest", "session-orchestrator", "persister")


def service_logs(stack) -> str:
    return "\n".join((stack.config.log_dir / f"{s}.log").read_text(errors="replace") for s in SERVICES)


async def test_tokens_tickets_and_keys_never_reach_the_logs(stack, gateway):
    user = unique_user("logs")
    token = token_for(user)
    events = stack.url("gateway").replace("http://", "ws://") + "/api/v1/events"
    async with ws_connect(f"{events}?token={token}") as ws:
        await ws.ping()
    ticket = (await gateway.post("/api/v1/events/ticket", headers=auth(user))).json()["ticket"]
    async with ws_connect(f"{events}?ticket={ticket}") as ws:
        await ws.ping()
    forged = token[:-4] + "AAAA"
    assert (await gateway.get("/api/v1/waha/status", headers={"Authorization": f"Bearer {forged}"})).status_code == 401

    async def both_sockets_logged() -> str | None:
        text = service_logs(stack)
        return text if text.count('"WebSocket /api/v1/events?') >= 2 else None

    text = await wait_until(both_sockets_logged, timeout=10, what="the gateway's lines about both sockets")
    for secret in (token, forged, ticket, SECRETS["JWT_SECRET"], SECRETS["WAHA_API_KEY"], SECRETS["WEBHOOK_HMAC_KEY"]):
        assert secret not in text
    assert "/api/v1/events?token=[redacted]" in text and "/api/v1/events?ticket=[redacted]" in text
