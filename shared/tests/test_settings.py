from datetime import timedelta

import pytest
from pydantic import ValidationError

from fleet_shared.settings import FleetSettings, parse_duration


class SecretSettings(FleetSettings):
    secret_fields = ("jwt_secret",)
    jwt_secret: str = ""


@pytest.mark.parametrize("raw,seconds", [("24h", 86400), ("15m", 900), ("90", 90), (30, 30), ("250ms", 0.25), ("2d", 172800)])
def test_durations(raw, seconds):
    assert parse_duration(raw) == timedelta(seconds=seconds)


def test_dev_secrets_are_refused_outside_dev(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "dev-0123456789abcdef")
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        SecretSettings()
    monkeypatch.setenv("JWT_SECRET", "short")
    with pytest.raises(ValidationError):
        SecretSettings()
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-of-enough-length")
    assert SecretSettings().jwt_secret == "a-real-secret-of-enough-length"


def test_dev_mode_accepts_dev_secrets(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("JWT_SECRET", "dev-x")
    assert SecretSettings().jwt_secret == "dev-x"
