"""Settings shared by every service; each service extends `FleetSettings` with its own."""

import re
from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
DEV_SECRET_PREFIX = "dev-"
MIN_SECRET_LENGTH = 16


def parse_duration(value: object) -> object:
    """`90`, `90s`, `15m`, `24h`, `2d`, `250ms` -> timedelta (plain numbers are seconds)."""
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _DURATION_RE.match(value)):
        return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class FleetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["dev", "production"] = "production"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    broker_prefix: Annotated[str, BeforeValidator(str.strip)] = "wa"
    orchestrator_partitions: int = 16
    request_timeout: Duration = timedelta(seconds=10)
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 0
    # A client must send a request's head within this of connecting (or of its first byte), and
    # its body within HTTP_BODY_TIMEOUT of the head; else the connection is closed
    # (`request_deadlines.py`). Uploads of MEDIA_MAX_BYTES need HTTP_BODY_TIMEOUT at their speed.
    # Replies to commands and queries larger than this are answered as an error (`broker.answer`).
    broker_max_reply_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    http_header_timeout: Duration = timedelta(seconds=10)
    http_body_timeout: Duration = timedelta(seconds=60)

    # Names of settings that hold secrets; checked at start-up outside dev.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> "FleetSettings":
        if self.environment == "dev":
            return self
        for name in self.secret_fields:
            value = getattr(self, name) or ""
            if value.startswith(DEV_SECRET_PREFIX) or len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{name.upper()} is unset, a dev key or shorter than {MIN_SECRET_LENGTH} characters; "
                    "set a real secret, or ENVIRONMENT=dev for local runs"
                )
        return self


class MongoSettings(BaseSettings):
    """Mixin for the services that own MongoDB collections."""

    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = "waha_fleet"
