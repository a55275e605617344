"""`/api/v1/admin/*` on the real RabbitMQ, a test responder standing in for the orchestrator."""

import pytest

from fleet_shared.contracts import Reply
from fleet_shared.contracts.admin import AdminSessionCount, AdminSessionRecord

pytestmark = pytest.mark.integration

ITEMS = [
    {"userId": "alice", "session": "wf_alice", "status": "WORKING", "lastActivity": "2026-11-28T10:00:00+00:00"},
    {"userId": "bob", "session": "wf_bob", "status": "SCAN_QR_CODE", "lastActivity": None},
]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def admin(tokens) -> dict[str, str]:
    return tokens.auth("ops", role="admin")


async def test_list_is_a_fleet_wide_query_asked_by_the_admin(gateway, responder, tokens, topology):
    async def listed(env: dict) -> Reply:
        return Reply.success(ITEMS)

    responder.handlers["sessions.list"] = listed
    response = await gateway.get("/api/v1/admin/sessions", headers=admin(tokens))
    assert response.status_code == 200, response.text
    assert response.json() == ITEMS
    filtered = await gateway.get(
        "/api/v1/admin/sessions", params={"status": "WORKING", "all": "true", "limit": 5}, headers=admin(tokens)
    )
    assert filtered.status_code == 200, filtered.text

    first, second = responder.of_type("sessions.list")
    assert first.routing_key == "system.admin.sessions.list"
    assert first.queue == topology.orchestrator_queries
    assert first.envelope["userId"] == "ops" and first.envelope["session"] is None
    assert first.envelope["data"] == {"status": None, "all": False, "limit": 1000}
    assert second.envelope["data"] == {"status": "WORKING", "all": True, "limit": 5}


async def test_count(gateway, responder, tokens):
    count = AdminSessionCount(
        count=3, by_status={"STOPPED": 1, "STARTING": 0, "SCAN_QR_CODE": 1, "WORKING": 1, "FAILED": 0},
        running=2, max_sessions=1000,
    )

    async def counted(env: dict) -> Reply:
        return Reply.success(count)

    responder.handlers["sessions.count"] = counted
    response = await gateway.get("/api/v1/admin/sessions/count", headers=admin(tokens))
    assert response.status_code == 200, response.text
    assert response.json() == count.wire()
    assert response.json()["byStatus"]["WORKING"] == 1
    [seen] = responder.of_type("sessions.count")
    assert seen.routing_key == "system.admin.sessions.count"


async def test_one_users_record_is_asked_on_that_users_key(gateway, responder, tokens):
    async def record(env: dict) -> Reply:
        if env["userId"] != "alice":
            return Reply.failure("not_found", f"no session record for user {env['userId']!r}", 404)
        return Reply.success(AdminSessionRecord(user_id="alice", session="wf_alice", status="WORKING", desired="running"))

    responder.handlers["session.admin_get"] = record
    response = await gateway.get("/api/v1/admin/sessions/alice", headers=admin(tokens))
    assert response.status_code == 200, response.text
    assert response.json()["userId"] == "alice" and response.json()["desired"] == "running"
    assert_error(await gateway.get("/api/v1/admin/sessions/nobody", headers=admin(tokens)), 404, "not_found")
    assert [s.routing_key for s in responder.of_type("session.admin_get")] == [
        "user.alice.session.admin_get", "user.nobody.session.admin_get",
    ]


async def test_non_admins_are_refused_before_anything_is_asked(gateway, responder, tokens):
    for path in ("/api/v1/admin/sessions", "/api/v1/admin/sessions/count", "/api/v1/admin/sessions/alice"):
        assert_error(await gateway.get(path, headers=tokens.auth("alice")), 403, "forbidden")
        assert_error(await gateway.get(path, headers=tokens.auth("alice", role="user")), 403, "forbidden")
    assert responder.seen == []


async def test_bad_parameters_are_422(gateway, responder, tokens):
    assert_error(await gateway.get("/api/v1/admin/sessions", params={"status": "DANCING"}, headers=admin(tokens)),
                 422, "invalid_request")
    assert_error(await gateway.get("/api/v1/admin/sessions", params={"limit": 0}, headers=admin(tokens)),
                 422, "invalid_request")
    assert_error(await gateway.get("/api/v1/admin/sessions/a.b", headers=admin(tokens)), 422, "invalid_request")
    assert responder.seen == []


async def test_a_malformed_answer_is_502(gateway, responder, tokens):
    async def wrong(env: dict) -> Reply:
        return Reply.success({"not": "a list"})

    responder.handlers["sessions.list"] = wrong
    assert_error(await gateway.get("/api/v1/admin/sessions", headers=admin(tokens)), 502, "bad_reply")
