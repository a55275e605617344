"""docs/openapi.json and docs/asyncapi.json are what the code generates, and document every endpoint and topic."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_shared.contracts import parse_envelope
from fleet_shared.contracts.commands import COMMAND_TYPES, QUERY_TYPES
from fleet_shared.contracts.events import EVENT_TYPES, PUBLIC_EVENT_TYPES
from fleet_shared.contracts.stream import parse_stored_event

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_api_docs.py"


def committed(name: str) -> dict:
    return json.loads((ROOT / "docs" / name).read_text())


def test_committed_documents_match_the_code():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        "the API documents drifted from the code; run `make docs` (uv run python scripts/gen_api_docs.py) "
        f"and commit docs/:\n{result.stdout}{result.stderr}"
    )


def test_the_check_notices_a_change(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gen_api_docs", SCRIPT)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name in gen.DOCUMENTS:
        (tmp_path / name).write_text((ROOT / "docs" / name).read_text())
    monkeypatch.setattr(gen, "DOCS", tmp_path)
    assert gen.stale() == []
    edited = committed("openapi.json")
    edited["paths"]["/api/v1/waha/status"]["get"]["summary"] = "changed by hand"
    (tmp_path / "openapi.json").write_text(gen.render(edited))
    assert gen.stale() == ["openapi.json"]


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_endpoint_has_examples():
    missing = []
    for name, operation in _operations(committed("openapi.json")):
        bodies = {f"response {status}": r for status, r in operation["responses"].items()}
        if "requestBody" in operation:
            bodies["request body"] = operation["requestBody"]
        for what, body in bodies.items():
            media = body.get("content", {}).get("application/json")
            if media is not None and not ("example" in media or "examples" in media):
                missing.append(f"{name}: {what}")
        assert any(s.startswith("2") or s == "101" for s in operation["responses"]), f"{name} documents no success"
    assert not missing, "bodies without an example:\n" + "\n".join(missing)


def test_every_contract_endpoint_is_documented():
    paths = committed("openapi.json")["paths"]
    expected = {
        "/api/v1/waha/status": "get", "/api/v1/waha/qr": "get", "/api/v1/waha/messages": "post",
        "/api/v1/waha/chats": "get", "/api/v1/waha/groups": "get", "/api/v1/waha/contacts": "get",
        "/api/v1/events": "get", "/api/v1/admin/sessions": "get", "/api/v1/admin/sessions/count": "get",
        "/api/v1/admin/sessions/{userId}": "get",
        **{f"/api/v1/waha/session/{a}": "post" for a in ("start", "stop", "restart", "logout")},
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"
    assert "get" in paths["/api/v1/waha/messages"]
    assert "image/png" in paths["/api/v1/waha/qr"]["get"]["responses"]["200"]["content"]
    frames = paths["/api/v1/events"]["get"]["responses"]["101"]["content"]["application/json"]["examples"]
    assert set(frames) == set(PUBLIC_EVENT_TYPES), "the WebSocket frames documented are not the public events"
    for example in frames.values():
        assert parse_stored_event(example["value"]).seq >= 1
    page = paths["/api/v1/events"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    assert [parse_stored_event(item).seq for item in page["items"]] == [41, 42] and page["next"] == 42


@pytest.mark.parametrize("message_type", sorted({*EVENT_TYPES, *COMMAND_TYPES, *QUERY_TYPES}))
def test_every_topic_has_a_channel_and_a_valid_example(message_type):
    document = committed("asyncapi.json")
    key = f"user.{{userId}}.{message_type}"
    assert key in document["channels"], f"{key} has no channel"
    assert key in document["operations"]
    message = document["components"]["messages"][f"{key}:Message"]
    [example] = message["examples"]
    assert parse_envelope(example["payload"]).type == message_type
