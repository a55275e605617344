"""Issue 20 end to end: a user's webhook receives their WhatsApp events signed, in `seq` order; an
admin registers one for a user; nobody else can."""

import json
import time

import pytest

from fleet_devtools.localdev import wait_until
from waha_emulator.testing import WebhookReceiver
from webhook_dispatcher.signing import verify

from ..conftest import auth, token_for
from ..helpers import connect, inbound, unique_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_a_users_webhook_gets_their_events_signed_and_in_order(stack, gateway, waha):
    user = unique_user("hook")
    await connect(gateway, waha, user, "15551120001")
    async with WebhookReceiver() as receiver:
        r = await gateway.post(
            "/api/v1/webhooks", headers=auth(user), json={"url": receiver.url_for("/in"), "events": ["message.received"]}
        )
        assert r.status_code == 201, r.text
        hook = r.json()
        sent = [(await inbound(waha, user, "4915100000055", f"hello {n}"))["id"] for n in range(5)]

        async def five() -> list | None:
            got = receiver.to("/in")
            return got if len(got) >= 5 else None

        got = await wait_until(five, timeout=20, what="5 deliveries")
    bodies = [json.loads(g.body) for g in got]
    # The stream's order is the order they were stored (WAHA's webhooks may overtake each other).
    assert sorted(b["data"]["id"] for b in bodies) == sorted(sent) and {b["type"] for b in bodies} == {"message.received"}
    seqs = [b["seq"] for b in bodies]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(verify(hook["secret"], g.headers["webhook-signature"], g.body, time.time()) for g in got)
    listed = (await gateway.get("/api/v1/webhooks", headers=auth(user))).json()["items"]
    assert [(h["id"], h["events"]) for h in listed] == [(hook["id"], ["message.received"])]
    bad = await gateway.post("/api/v1/webhooks", headers=auth(user), json={"url": "https://example.com", "events": ["nope"]})
    assert bad.status_code == 422


async def test_an_admin_manages_a_users_webhooks_and_a_user_cannot(gateway):
    user, other = unique_user("hook_admin"), unique_user("hook_other")
    admin = {"Authorization": f"Bearer {token_for('ops', admin=True)}"}
    base = f"/api/v1/admin/users/{user}/webhooks"
    r = await gateway.post(base, headers=admin, json={"url": "http://127.0.0.1:9/for-the-user"})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert [h["id"] for h in (await gateway.get("/api/v1/webhooks", headers=auth(user))).json()["items"]] == [hook["id"]]
    assert [h["id"] for h in (await gateway.get(base, headers=admin)).json()["items"]] == [hook["id"]]
    assert (await gateway.get(f"{base}/{hook['id']}/deliveries", headers=admin)).status_code == 200
    assert (await gateway.get(base, headers=auth(other))).status_code == 403
    assert (await gateway.delete(f"/api/v1/admin/users/{other}/webhooks/{hook['id']}", headers=admin)).status_code == 404
    assert (await gateway.delete(f"{base}/{hook['id']}", headers=admin)).status_code == 204
    assert (await gateway.get("/api/v1/webhooks", headers=auth(user))).json()["items"] == []
