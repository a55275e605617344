"""Settings: defaults, durations from the environment, secrets refused outside dev."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from fleet_shared.waha import session_webhook_key
from session_orchestrator.config import Settings
from session_orchestrator.domain.session_config import WebhookTarget, config_is_current, session_config


def test_defaults():
    settings = Settings(environment="dev", _env_file=None)
    assert settings.port == 8082
    assert settings.waha_url == "http://127.0.0.1:3000"
    assert settings.webhook_url == "http://127.0.0.1:8081/webhooks/waha"
    assert settings.session_idle_timeout == timedelta(hours=24)
    assert settings.idle_sweep_interval == timedelta(minutes=1)
    assert settings.max_sessions == 1000


def test_environment(monkeypatch):
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "90m")
    monkeypatch.setenv("MAX_SESSIONS", "5")
    monkeypatch.setenv("IDLE_SWEEP_INTERVAL", "30s")
    monkeypatch.setenv("WAHA_URL", "http://waha:3000")
    settings = Settings(environment="dev", _env_file=None)
    assert settings.session_idle_timeout == timedelta(minutes=90)
    assert (settings.max_sessions, settings.waha_url) == (5, "http://waha:3000")
    assert settings.idle_sweep_interval == timedelta(seconds=30)


def test_dev_or_missing_secrets_are_refused_outside_dev():
    with pytest.raises(ValidationError, match="WAHA_API_KEY"):
        Settings(environment="production", waha_api_key="dev-key", webhook_hmac_key="x" * 32, _env_file=None)
    with pytest.raises(ValidationError, match="WEBHOOK_HMAC_KEY"):
        Settings(environment="production", waha_api_key="k" * 32, webhook_hmac_key="", _env_file=None)
    Settings(environment="production", waha_api_key="k" * 32, webhook_hmac_key="h" * 32, _env_file=None)


def test_session_config_names_the_user_and_the_signed_webhook():
    config = session_config("alice", WebhookTarget("http://ingest/webhooks/waha", "secret"))
    assert config == {
        "metadata": {"fleet.userId": "alice"},
        "webhooks": [
            {
                "url": "http://ingest/webhooks/waha/wf_alice",  # the session's own path
                "events": [
                    "message", "message.any", "message.ack", "message.reaction", "message.edited", "message.revoked",
                    "session.status", "group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants",
                ],
                "hmac": {"key": session_webhook_key("secret", "wf_alice")},  # the session's own key
                "retries": {"policy": "constant", "delaySeconds": 2, "attempts": 15},
            }
        ],
        # Without its store NOWEB answers no lookup by id (the send-crash recovery's) and no history.
        "noweb": {"store": {"enabled": True, "fullSync": False}},
    }


def test_a_config_is_current_in_what_waha_fleet_sets_whatever_else_waha_adds():
    desired = session_config("alice", WebhookTarget("http://ingest/webhooks/waha", "secret"))
    as_waha_answers = {
        **desired,
        "proxy": None,
        "debug": False,
        "webhooks": [{**desired["webhooks"][0], "customHeaders": None, "events": list(reversed(desired["webhooks"][0]["events"]))}],
    }
    assert config_is_current(as_waha_answers, desired)
    fleet_keyed = {**desired, "webhooks": [{**desired["webhooks"][0], "url": "http://ingest/webhooks/waha", "hmac": {"key": "secret"}}]}
    assert not config_is_current(fleet_keyed, desired)  # a release before per-session keys: rolled out
    older = {**desired, "webhooks": [{**desired["webhooks"][0], "events": ["message", "message.any", "message.ack", "session.status"]}]}
    assert not config_is_current(older, desired)
    assert not config_is_current({**desired, "noweb": None}, desired)
    assert not config_is_current({**desired, "webhooks": [{**desired["webhooks"][0], "hmac": {"key": "old"}}]}, desired)
    assert not config_is_current(None, desired)
