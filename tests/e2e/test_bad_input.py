"""4: bad input through the real HTTP endpoints, one test each: a clear 4xx, nothing published, nothing stored.

Every bad request carries a fresh `tag` (in its user id, chat id or body). Afterwards a valid
request marked with another fresh string goes the same way; once that one is on the bus (and,
for webhooks, stored), nothing may mention the tag: not on the commands, queries, events or
parked exchanges, not in MongoDB.
"""

import json
import time
import uuid

import jwt
import pytest

from fleet_devtools.localdev import wait_until

from ..conftest import SECRETS, auth, token_for
from ..helpers import signed, signed_for, wa_message, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MAX_WEBHOOK_BYTES = 1024 * 1024  # WEBHOOK_MAX_BYTES' default
COLLECTIONS = ("messages", "chats", "sessions", "sends")


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:12]


def fresh() -> str:
    return uuid.uuid4().hex[:12]


def assert_refused(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if code:
        assert error["code"] == code, error


async def nothing_mentions(bus, db, tag: str) -> None:
    assert bus.mentioning(tag) == []
    pattern = {"$regex": tag}
    for name in COLLECTIONS:
        query = {"$or": [{"userId": pattern}, {"id": pattern}, {"chatId": pattern}, {"body": pattern}, {"key": pattern}]}
        assert await db[name].count_documents(query) == 0, name


# ---- webhook-ingest ----------------------------------------------------------------------------


def message_hook(user: str, text: str) -> dict:
    return webhook(user, "message.any", wa_message(f"RAW{fresh().upper()}", "4915700000001", text))


async def post_raw(ingest, path: str, body: bytes, headers: dict[str, str]):
    return await ingest.post(path, content=body, headers=headers)


async def after_a_valid_webhook(ingest, bus, db, tag: str) -> None:
    """A valid webhook for a user of its own goes through and is stored; then nothing mentions `tag`."""
    mark = fresh()
    hook = message_hook(f"ok_{mark}", f"marker {mark}")
    assert (await post_raw(ingest, *signed(hook))).status_code == 200
    await bus.wait_for(mark)

    async def stored() -> bool:
        return await db.messages.count_documents({"userId": f"ok_{mark}"}) == 1

    await wait_until(stored, timeout=15, what="the marker webhook stored")
    await nothing_mentions(bus, db, tag)


async def test_invalid_json_is_400(ingest, bus, db, tag):
    body = f'{{"event": "message", "session": "wf_{tag}", '.encode()  # cut short, correctly signed
    path, headers = signed_for(f"wf_{tag}", body)
    assert_refused(await post_raw(ingest, path, body, headers), 400, "invalid_json")
    await after_a_valid_webhook(ingest, bus, db, tag)


async def test_missing_fields_are_422(ingest, bus, db, tag):
    hook = message_hook(f"u_{tag}", f"no id {tag}")
    del hook["payload"]["id"]
    assert_refused(await post_raw(ingest, *signed(hook)), 422, "invalid_webhook")
    envelope_without_event = message_hook(f"u_{tag}", f"no event {tag}")
    del envelope_without_event["event"]
    assert_refused(await post_raw(ingest, *signed(envelope_without_event)), 422, "invalid_webhook")
    await after_a_valid_webhook(ingest, bus, db, tag)


async def test_a_wrong_signature_is_401(ingest, bus, db, tag):
    path, body, headers = signed(message_hook(f"u_{tag}", f"forged {tag}"))
    headers["X-Webhook-Hmac"] = headers["X-Webhook-Hmac"][::-1]
    assert_refused(await post_raw(ingest, path, body, headers), 401, "invalid_signature")
    await after_a_valid_webhook(ingest, bus, db, tag)


async def test_a_missing_signature_is_401(ingest, bus, db, tag):
    path, body, headers = signed(message_hook(f"u_{tag}", f"unsigned {tag}"))
    del headers["X-Webhook-Hmac"]
    assert_refused(await post_raw(ingest, path, body, headers), 401, "invalid_signature")
    await after_a_valid_webhook(ingest, bus, db, tag)


async def test_a_body_over_the_size_limit_is_413(ingest, bus, db, tag):
    hook = message_hook(f"u_{tag}", f"{tag} " + "x" * MAX_WEBHOOK_BYTES)
    assert_refused(await post_raw(ingest, *signed(hook)), 413, "payload_too_large")
    await after_a_valid_webhook(ingest, bus, db, tag)


BAD_USER_IDS = {"dot": "a.{tag}", "star": "*.{tag}", "hash": "#.{tag}", "unicode": "ünï_{tag}", "10k": "{tag}" + "a" * 9_988}


@pytest.mark.parametrize("template", BAD_USER_IDS.values(), ids=BAD_USER_IDS.keys())
async def test_a_webhook_naming_an_impossible_user_is_parked_never_routed(ingest, bus, db, tag, template):
    """WAHA is not a client: an unusable user id in a session's metadata is not refused (WAHA would
    retry for ever) but parked like any unknown session's event, and routed to nobody."""
    user = template.format(tag=tag)
    hook = webhook("x", "message.any", wa_message(f"RAW{tag.upper()}", "4915700000002", f"for {tag}"),
                   session=f"wf_{tag}", metadata_user=user)
    response = await post_raw(ingest, *signed(hook))
    assert response.status_code == 202 and response.json() == {"status": "parked"}
    [parked] = await bus.wait_for(tag)
    assert parked.exchange.endswith(".parked") and parked.headers["x-park-reason"] == "unknown_session"
    assert json.loads(parked.body) == hook  # kept unchanged, to inspect or replay
    assert not [m for m in bus.mentioning(tag) if not m.exchange.endswith(".parked")]
    for name in COLLECTIONS:
        assert await db[name].count_documents({"$or": [{"userId": {"$regex": tag}}, {"body": {"$regex": tag}}]}) == 0


async def test_an_unknown_sessions_event_is_parked_not_lost_and_routed_to_nobody(ingest, bus, db, tag):
    hook = webhook("x", "message", wa_message(f"RAW{tag.upper()}", "4915700000003", f"stranger {tag}"),
                   session=f"someone_elses_{tag}", metadata_user=f"u_{tag}")
    response = await post_raw(ingest, *signed(hook))
    assert response.status_code == 202
    [parked] = await bus.wait_for(tag)
    assert parked.exchange.endswith(".parked") and parked.headers["x-waha-session"] == f"someone_elses_{tag}"
    assert json.loads(parked.body) == hook
    # The metadata names u_<tag>, but the session is not the one derived from it: nothing for that user.
    assert not [m for m in bus.mentioning(tag) if not m.exchange.endswith(".parked")]
    assert await db.messages.count_documents({"userId": f"u_{tag}"}) == 0


# ---- gateway -----------------------------------------------------------------------------------


def token(claims: dict, *, key: str = SECRETS["JWT_SECRET"], algorithm: str = "HS256") -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm=algorithm)}"}


def in_an_hour() -> int:
    return int(time.time()) + 3600


async def after_valid_requests(gateway, bus, db, tag: str) -> None:
    """A valid query and a valid command of a user of its own are published; then nothing mentions `tag`."""
    mark = fresh()
    r = await gateway.get("/api/v1/waha/messages", params={"chatId": f"{mark}@c.us"}, headers=auth(f"ok_{mark}"))
    assert r.status_code == 200, r.text
    r = await gateway.post("/api/v1/waha/messages", json={"chatId": f"{mark}@c.us", "text": mark}, headers=auth(f"ok_{mark}"))
    assert r.status_code == 409, r.text  # published and answered: that user's session is not WORKING
    await wait_until(lambda: _both_kinds(bus, mark), timeout=15, what="the marker query and command on the bus")
    await nothing_mentions(bus, db, tag)


async def _both_kinds(bus, mark: str) -> bool:
    exchanges = {m.exchange.rsplit(".", 1)[-1] for m in bus.mentioning(mark)}
    return {"queries", "commands"} <= exchanges


async def refused_everywhere(gateway, headers: dict[str, str], tag: str, status: int, code: str | None) -> None:
    """The same credentials on a query (status), a query with the tag (messages) and a command: all refused alike."""
    assert_refused(await gateway.get("/api/v1/waha/status", headers=headers), status, code)
    assert_refused(await gateway.get("/api/v1/waha/messages", params={"chatId": f"{tag}@c.us"}, headers=headers), status, code)
    assert_refused(await gateway.post("/api/v1/waha/messages", json={"chatId": f"{tag}@c.us", "text": tag}, headers=headers), status, code)


async def test_an_expired_token_is_401(gateway, bus, db, tag):
    headers = token({"sub": f"u_{tag}", "exp": int(time.time()) - 60})
    await refused_everywhere(gateway, headers, tag, 401, "token_expired")
    await after_valid_requests(gateway, bus, db, tag)


async def test_a_token_signed_with_another_key_is_401(gateway, bus, db, tag):
    headers = token({"sub": f"u_{tag}", "exp": in_an_hour()}, key="another-key-" + "k" * 32)
    await refused_everywhere(gateway, headers, tag, 401, "invalid_token")
    await after_valid_requests(gateway, bus, db, tag)


async def test_an_alg_none_token_is_401(gateway, bus, db, tag):
    headers = token({"sub": f"u_{tag}", "exp": in_an_hour()}, key="", algorithm="none")
    await refused_everywhere(gateway, headers, tag, 401, "invalid_token")
    await after_valid_requests(gateway, bus, db, tag)


async def test_a_token_without_sub_is_401(gateway, bus, db, tag):
    await refused_everywhere(gateway, token({"exp": in_an_hour(), "name": tag}), tag, 401, "invalid_token")
    await after_valid_requests(gateway, bus, db, tag)


async def test_a_token_without_exp_is_401(gateway, bus, db, tag):
    await refused_everywhere(gateway, token({"sub": f"u_{tag}"}), tag, 401, "invalid_token")
    await after_valid_requests(gateway, bus, db, tag)


async def test_no_token_at_all_is_401(gateway, bus, db, tag):
    await refused_everywhere(gateway, {}, tag, 401, "unauthorized")
    await after_valid_requests(gateway, bus, db, tag)


@pytest.mark.parametrize("template", BAD_USER_IDS.values(), ids=BAD_USER_IDS.keys())
async def test_a_token_whose_user_id_cannot_be_routed_is_401(gateway, bus, db, tag, template):
    headers = token({"sub": template.format(tag=tag), "exp": in_an_hour()})
    await refused_everywhere(gateway, headers, tag, 401, "invalid_token")
    await after_valid_requests(gateway, bus, db, tag)


BAD_CHAT_IDS = {"dot": "{tag}.1@c.us", "star": "{tag}*@c.us", "hash": "#{tag}@c.us", "unicode": "{tag}ü@c.us", "10k": "{tag}" + "1" * 9_988}


@pytest.mark.parametrize("template", BAD_CHAT_IDS.values(), ids=BAD_CHAT_IDS.keys())
async def test_a_chat_id_that_is_not_one_is_422(gateway, bus, db, tag, template):
    chat_id = template.format(tag=tag)
    headers = auth(f"u_{tag}")
    assert_refused(await gateway.post("/api/v1/waha/messages", json={"chatId": chat_id, "text": "hi"}, headers=headers), 422, "invalid_request")
    assert_refused(await gateway.get("/api/v1/waha/messages", params={"chatId": chat_id}, headers=headers), 422, "invalid_request")
    await after_valid_requests(gateway, bus, db, tag)


ADMIN_PATHS = ["/api/v1/admin/sessions", "/api/v1/admin/sessions/count", "/api/v1/admin/sessions/u_{tag}"]


@pytest.mark.parametrize("path", ADMIN_PATHS, ids=["list", "count", "one"])
async def test_admin_endpoints_without_the_admin_role_are_403(gateway, bus, db, tag, path):
    for role in (None, "user", "Admin"):
        claims = {"sub": f"u_{tag}", "exp": in_an_hour(), **({"role": role} if role else {})}
        assert_refused(await gateway.get(path.format(tag=tag), headers=token(claims)), 403, "forbidden")
    await after_valid_requests(gateway, bus, db, tag)
    admin = await gateway.get(path.format(tag=tag), headers={"Authorization": f"Bearer {token_for('ops', admin=True)}"})
    assert admin.status_code in (200, 404), admin.text  # the same path with the role is served
