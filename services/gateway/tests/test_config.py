"""Settings: JWT_SECRET is a secret (refused when unset or a dev key outside dev), port 8080."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from gateway.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("JWT_SECRET", "ENVIRONMENT", "PORT", "REQUEST_TIMEOUT", "JWT_LEEWAY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("secret", [None, "", "dev-0123456789abcdefghij", "short"])
def test_outside_dev_a_real_secret_is_required(monkeypatch, secret):
    monkeypatch.setenv("ENVIRONMENT", "production")
    if secret is not None:
        monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings()


def test_production_with_a_real_secret(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-of-good-length-123")
    monkeypatch.setenv("REQUEST_TIMEOUT", "1500ms")
    settings = Settings()
    assert settings.jwt_secret == "a-real-secret-of-good-length-123"
    assert settings.port == 8080
    assert settings.request_timeout == timedelta(seconds=1.5)


def test_dev_without_secret_gets_a_random_dev_key(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "dev")
    first, second = Settings(), Settings()
    assert first.jwt_secret.startswith("dev-") and len(first.jwt_secret) > 32
    assert first.jwt_secret != second.jwt_secret


def test_dev_uses_the_given_secret(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("JWT_SECRET", "dev-given")
    assert Settings().jwt_secret == "dev-given"
